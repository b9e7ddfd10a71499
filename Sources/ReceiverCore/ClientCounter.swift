import NIOCore

/// Per client address, its open sessions and its new connections in the current time unit: the
/// counts Postfix's `anvil` keeps for `smtpd_client_connection_count_limit` and
/// `smtpd_client_connection_rate_limit`. It only counts; ``ReceiveStateMachine`` decides.
/// An address is forgotten once it has no session and its time unit is over, so the table is
/// as large as the set of recent clients, never the history of all of them.
package struct ClientCounter {
    package struct Count: Equatable {
        /// Open sessions from the address, this one included.
        package var sessions: Int
        /// New connections from the address in its current time unit, this one included.
        package var connections: Int

        package init(sessions: Int, connections: Int) {
            self.sessions = sessions
            self.connections = connections
        }
    }

    struct Entry {
        var sessions = 0
        var connections = 0
        /// Postfix's anvil counts in fixed units that begin at an address's first connection.
        var unitStart: NIODeadline
    }

    private var entries: [String: Entry] = [:]
    private var lastSweep: NIODeadline?

    package init() {}

    /// Addresses the table holds now.
    package var addresses: Int { entries.count }

    /// A new connection from `client`: counted, and the counts with it.
    package mutating func connect(_ client: String, now: NIODeadline, unit: TimeAmount) -> Count {
        sweep(now: now, unit: unit)
        var e = entries[client] ?? Entry(unitStart: now)
        if now - e.unitStart >= unit {
            e.unitStart = now
            e.connections = 0
        }
        e.sessions += 1
        e.connections += 1
        entries[client] = e
        return Count(sessions: e.sessions, connections: e.connections)
    }

    /// A session from `client` ended.
    package mutating func disconnect(_ client: String) {
        guard var e = entries[client], e.sessions > 0 else { return }
        e.sessions -= 1
        entries[client] = e
    }

    /// At most once per unit: forget the addresses with no session whose unit is over.
    private mutating func sweep(now: NIODeadline, unit: TimeAmount) {
        if let last = lastSweep, now - last < unit { return }
        lastSweep = now
        entries = entries.filter { $0.value.sessions > 0 || now - $0.value.unitStart < unit }
    }
}
