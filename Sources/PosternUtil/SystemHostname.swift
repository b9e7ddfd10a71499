import Glibc

/// The host's name as the kernel knows it, the default for `[General] Hostname`.
public enum SystemHostname {
    /// `gethostname(2)`, or `localhost` if that fails (it does not on Linux, but a daemon must
    /// start anyway).
    public static func current() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}
