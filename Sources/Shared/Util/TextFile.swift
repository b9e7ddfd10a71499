import Glibc

/// Reads small text files (configuration, lookup lists) without Foundation.
public enum TextFile {
    /// Lookup lists and configs are small; a cap stops a mistyped path such as a device or a
    /// mailbox from eating memory at load time.
    public static let maximumSize = 64 << 20

    /// Returns the file's bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    public static func read(_ path: String) throws(FileReadError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileReadError(path: path, code: errno) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileReadError(path: path, code: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumSize { throw FileReadError(path: path, code: EFBIG) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The directory part of `path` (`.` when there is none), for resolving relative names.
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `name` if absolute, else `name` under `directory`.
    public static func resolve(_ name: String, relativeTo directory: String) -> String {
        name.hasPrefix("/") || directory == "." ? name : directory + "/" + name
    }
}

/// A file that could not be read, with the `errno` that said why.
public struct FileReadError: Error, Sendable, CustomStringConvertible {
    /// The path as given.
    public var path: String
    /// The `errno` value.
    public var code: Int32

    public var description: String { "cannot read '\(path)': \(String(cString: strerror(code)))" }
}
