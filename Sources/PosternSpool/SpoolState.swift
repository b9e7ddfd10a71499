import Glibc
import PosternUtil
/// The directories of the spool, one per state. A message changes state by `rename(2)`.
/// - SeeAlso: docs/spool-format.md
public enum SpoolState: String, Sendable, CaseIterable {
    /// Being written by receiverd; never read by others. Leftovers after a crash are incomplete.
    case incoming
    /// Durable, waiting for scannerd.
    case scan
    /// Scanned, routes resolved, waiting for senderd.
    case outgoing
    /// Delivery failed temporarily; the file's mtime is the time of the next attempt.
    case deferred
    /// Held by the administrator (`posternctl queue hold`).
    case hold
    /// Blocked and kept (issue: quarantine).
    case quarantine
    /// Damaged files, kept for the administrator, never deleted by Postern.
    case corrupt
}

/// Paths of a spool rooted at `root`.
public struct SpoolLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    public func directory(_ state: SpoolState) -> String { "\(root)/\(state.rawValue)" }
    public func path(_ id: String, _ state: SpoolState) -> String { "\(root)/\(state.rawValue)/\(id)" }

    /// The queue ids in a state, oldest first; other names (editor files, leftovers) are not ours.
    /// An unreadable directory reads as empty: the next scan tries again.
    public func ids(in state: SpoolState) -> [String] {
        (try? listIDs(in: state)) ?? []
    }

    /// The same, but a directory that cannot be read is an error: for the administrator, a
    /// missing or unreadable spool is not an empty queue.
    public func listIDs(in state: SpoolState) throws(SpoolError) -> [String] {
        try SysCall.listDirectory(directory(state)).filter(QueueID.isValid).sorted()
    }

    /// Creates the root and every state directory (mode 0750), as each daemon does on start.
    public func createDirectories() throws(SpoolError) {
        try SysCall.mkdirs(root, mode: 0o750)
        for s in SpoolState.allCases { try SysCall.mkdirs(directory(s), mode: 0o750) }
    }
}

extension SpoolLayout {
    /// A file posternctl writes into the spool, perhaps as root, must stay readable and
    /// writable for the daemons: it takes the owner of `outgoing/` (the daemons' user). A
    /// daemon's own file already has it (chown to oneself is a no-op).
    package func giveToDaemons(_ path: String) {
        var owner = stat()
        if stat(directory(.outgoing), &owner) == 0 && (owner.st_uid != geteuid() || owner.st_gid != getegid()) {
            _ = chown(path, owner.st_uid, owner.st_gid)
        }
    }
}
