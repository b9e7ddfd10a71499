import Glibc
import Logging
import PosternSpool

extension SpoolLayout {
    /// Moves a queue file that cannot be read as one (or was left half-written) to `corrupt/`
    /// and says so: damaged mail is kept for the administrator, never silently deleted
    /// (DESIGN.md §2). False when it could not be moved (it is gone, or the rename failed).
    @discardableResult
    package func moveToCorrupt(_ id: String, from state: SpoolState, why: String, logger: Logger,
                               level: Logger.Level = .warning) -> Bool {
        guard rename(path(id, state), path(id, .corrupt)) == 0 else { return false }
        logger.log(level: level, "\(why): moved \(state.rawValue)/ to corrupt/", metadata: ["queue-id": "\(id)"])
        return true
    }
}
