import NIOConcurrencyHelpers

/// Queue ids waiting for a daemon's workers, without duplicates: a wake-up and a directory
/// scan may name the same message, and a message must not be worked on twice at once.
public final class WorkQueue: Sendable {
    private struct State {
        package var queued: [String] = []
        package var head = 0
        package var known: Set<String> = []
        package var waiters: [CheckedContinuation<String?, Never>] = []
        package var closed = false
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Adds an id unless it is queued or in progress already.
    public func add(_ id: String) {
        let waiter: CheckedContinuation<String?, Never>? = state.withLockedValue { s in
            guard !s.closed, s.known.insert(id).inserted else { return nil }
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.queued.append(id)
            return nil
        }
        waiter?.resume(returning: id)
    }

    /// The next id, or nil once the queue is closed.
    public func next() async -> String? {
        await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            let ready: String?? = state.withLockedValue { s in
                // Closed: the spool still holds the rest; a stopping daemon takes no new work.
                if s.closed { return .some(nil) }
                if s.head < s.queued.count {
                    let id = s.queued[s.head]
                    s.head += 1
                    if s.head > 1024 && s.head * 2 > s.queued.count { s.queued.removeFirst(s.head); s.head = 0 }
                    return .some(id)
                }
                s.waiters.append(c)
                return .none
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    /// Marks an id finished, so a later wake-up for it is accepted again.
    public func done(_ id: String) { state.withLockedValue { _ = $0.known.remove(id) } }


    public func close() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<String?, Never>] in
            s.closed = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(returning: nil) }
    }
}
