/// Why a zip archive or member could not be read. A broken or hostile archive is an error,
/// never a crash.
public struct ZipError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// No end of central directory record within reach of the end: not a zip.
        case noEndRecord
        /// The central directory is out of bounds or a header in it is broken.
        case badCentralDirectory
        /// A member's local header is missing or its data runs past the end.
        case badLocalHeader
        case encrypted
        case unsupportedMethod
        /// The deflate stream is broken or ends early.
        case corruptData
        /// The output passed the cap the caller set.
        case outputLimit
        /// The caller's deadline passed while inflating.
        case deadline
    }

    public var code: Code
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { hint }
}
