import Glibc
import PosternUtil

/// A key the daemons share: the configured secret, or else a random one kept in the spool root
/// (mode 0600, as the daemons' user), so that one installation agrees without configuration.
/// Each such file is named `.NAME-key`, so that a listing of the spool can leave them out.
public enum SpoolSecret {
    /// The loop guard's key (``LoopGuard``).
    public static let guardKey = ".guard-key"
    /// The key of release tokens (``ReleaseToken``).
    public static let releaseKey = ".release-key"
    /// Every key file in the spool root: what a switch to `[General] User` gives to that user.
    public static let files = [guardKey, releaseKey]

    /// `configured` when set; else the file `name` in the spool, made when missing and
    /// `create` (a tool run as root must not make a file the daemons cannot read).
    static func load(configured: String, name: String, layout: SpoolLayout, create: Bool = true) throws(SpoolError) -> [UInt8] {
        if !configured.isEmpty { return Array(configured.utf8) }
        let path = "\(layout.root)/\(name)"
        if let existing = try? SysCall.readFile(path, limit: 4096), existing.count >= 32 { return existing }
        guard create else { return try SysCall.readFile(path, limit: 4096) }
        let tmp = "\(path).\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw SpoolError("open", tmp) }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 { bytes[i] = UInt8.random(in: 0...255) }
        let hex = Array(bytes.hex.utf8)
        defer { close(fd) }
        do { try hex.withUnsafeBytes { try SysCall.writeAll(fd, $0, path: tmp) } } catch let e as SpoolError { throw e } catch { throw SpoolError("write", tmp) }
        if fsync(fd) != 0 { throw SpoolError("fsync", tmp) }
        // link(2) fails if another daemon won the race; then its key is the one.
        if link(tmp, path) != 0 && errno != EEXIST { unlink(tmp); throw SpoolError("link", path) }
        unlink(tmp)
        return try SysCall.readFile(path, limit: 4096)
    }
}
