import Glibc

/// Reads small text files (configuration, lookup lists) without Foundation.
public enum TextFile {
    /// Lookup lists and configs are small; a cap stops a mistyped path such as a device or a
    /// mailbox from eating memory at load time.
    public static let maximumSize = 64 << 20

    /// Returns the file's bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    public static func read(_ path: String) throws(FileReadError) -> String {
        do throws(SpoolError) {
            return String(decoding: try SysCall.readFile(path, limit: maximumSize), as: UTF8.self)
        } catch {
            throw FileReadError(path: path, code: error.errno)
        }
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

    public init(path: String, code: Int32) {
        self.path = path
        self.code = code
    }

    public var description: String { "cannot read '\(path)': \(String(cString: strerror(code)))" }
}
