import Glibc
import PosternSpool
import PosternUtil

/// posternctl's exit codes, from sysexits.h, so that scripts can tell a typo from a missing
/// message from a stopped daemon (docs/operations.md, "Exit codes").
enum Sysexits: Int32 {
    /// Command-line syntax (ArgumentParser prints the usage).
    case usage = 64
    /// A malformed queue id, or a spool file that cannot be read as one.
    case dataErr = 65
    /// No such message, no such file, no spool where the configuration says.
    case noInput = 66
    /// `quarantine release --rcpt` names no recipient of the message.
    case noUser = 67
    /// senderd (or another daemon) is not running or not reachable.
    case unavailable = 69
    /// A system call failed in a way that is not about the spool's contents.
    case osErr = 71
    /// Reading or writing the spool failed.
    case ioErr = 74
    /// No permission (run posternctl as root or as the daemons' user).
    case noPerm = 77
    /// The configuration has errors.
    case config = 78
}

/// An error posternctl reports as `posternctl: MESSAGE` on stderr and exits with.
struct CtlError: Error, CustomStringConvertible {
    var code: Sysexits
    var message: String

    init(_ code: Sysexits, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }

    /// A failed system call, its exit code chosen by errno.
    init(_ error: SpoolError, _ what: String? = nil) {
        let text = (what.map { $0 + ": " } ?? "") + error.description
        switch error.errno {
        case ENOENT, ENOTDIR: self.init(.noInput, text)
        case EACCES, EPERM, EROFS: self.init(.noPerm, text)
        case EIO, ENOSPC, EDQUOT, EFBIG, ESTALE: self.init(.ioErr, text)
        case ECONNREFUSED, EADDRINUSE, EADDRNOTAVAIL, ENETUNREACH, EHOSTUNREACH: self.init(.unavailable, text)
        default: self.init(["read", "write", "pread", "sendfile"].contains(error.call) ? .ioErr : .osErr, text)
        }
    }

    /// Any error from the library, mapped to an exit code.
    static func from(_ error: any Error) -> CtlError? {
        switch error {
        case let e as CtlError: return e
        case let e as SpoolError: return CtlError(e)
        case let e as SpoolFormatError: return CtlError(.dataErr, e.description)
        case let e as FileReadError:
            return CtlError(SpoolError("open", e.path, errno: e.code))
        case let e as QuarantineError: return CtlError(.dataErr, e.description)
        default: return nil
        }
    }
}

/// Runs `body` for every id; an id that fails is reported and the others are still done.
/// Throws the first failure's exit code at the end (like postsuper, which goes on).
func forEachID(_ ids: [String], _ body: (String) throws -> Void) throws {
    var first: Sysexits?
    for id in ids {
        do {
            try body(id)
        } catch {
            guard let e = CtlError.from(error) else { throw error }
            Stderr.write("posternctl: \(e.message)\n")
            first = first ?? e.code
        }
    }
    if let first { throw ExitCodeError(code: first) }
}

/// Runs `body` and hands back the error it threw, so that a command can still say what it did.
func catchExit(_ body: () throws -> Void) -> (any Error)? {
    do { try body() } catch { return error }
    return nil
}

/// Exit with `code`, everything already said on stderr.
struct ExitCodeError: Error {
    var code: Sysexits
}
