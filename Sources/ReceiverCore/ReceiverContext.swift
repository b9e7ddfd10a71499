import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PosternPolicy
import PosternRuntime
import PosternSpool

/// What every session of one receiverd shares.
package struct ReceiverContext: Sendable {
    /// The configuration in force; each session takes a snapshot when it starts.
    package let store: ConfigStore
    package let layout: SpoolLayout
    /// Commits new queue files on its own thread, sharing the fsyncs among concurrent sessions.
    package let committer: GroupCommitter
    /// Wakes scannerd for a message in `scan/`.
    package let scanner: WakeupLink
    /// Wakes senderd for a message whose before-queue verdict sent it to `outgoing/`.
    package let sender: WakeupLink
    /// Synchronous mode: asks scannerd for the before-queue verdict.
    package let prescan: any VerdictSource
    package let loopGuard: LoopGuard
    package let sessions: SessionRegistry
    /// For STARTTLS, when `[Receiver] TLSCertificate` and `TLSKey` are set (re-read on reload).
    package let tls: ServerTLS
    package let metrics: ReceiverMetrics
    package let logger: Logger

    package init(store: ConfigStore, layout: SpoolLayout, committer: GroupCommitter,
                 scanner: WakeupLink, sender: WakeupLink, prescan: any VerdictSource, loopGuard: LoopGuard,
                 sessions: SessionRegistry, tls: ServerTLS, metrics: ReceiverMetrics, logger: Logger) {
        self.store = store
        self.layout = layout
        self.committer = committer
        self.scanner = scanner
        self.sender = sender
        self.prescan = prescan
        self.loopGuard = loopGuard
        self.sessions = sessions
        self.tls = tls
        self.metrics = metrics
        self.logger = logger
    }
}

/// Live sessions, so shutdown can tell each one to finish and say 421; with them the counts
/// per client address (``ClientCounter``) and the stress mode (``StressGauge``).
package final class SessionRegistry: Sendable {
    private struct Sessions {
        var handles: [ObjectIdentifier: SMTPServerHandler.Handle] = [:]
        var clients = ClientCounter()
        var stress = StressGauge()
    }

    /// What a new session learns when it is counted.
    package struct Admission: Equatable {
        /// Open sessions, this one included.
        package var sessions: Int
        /// Its client address's sessions and connections.
        package var client: ClientCounter.Count
        /// The session tipped receiverd into stress mode.
        package var stress: StressGauge.Change?
    }

    private let box = NIOLockedValueBox(Sessions())
    private let shuttingDown = NIOLockedValueBox(false)

    private let receiving = NIOLockedValueBox(0)

    package init() {}

    package var count: Int { box.withLockedValue { $0.handles.count } }
    /// Stress mode is on: every session's timeouts are the shorter ones.
    package var isStressed: Bool { box.withLockedValue { $0.stress.stressed } }
    /// Sessions reading a message now: their commits will follow within moments.
    package var inData: Int { receiving.withLockedValue { $0 } }
    package func dataStarted() { receiving.withLockedValue { $0 += 1 } }
    package func dataEnded() { receiving.withLockedValue { $0 -= 1 } }
    package var isShuttingDown: Bool { shuttingDown.withLockedValue { $0 } }

    /// Counts a new session (`config` is the session's snapshot: limits and threshold).
    package func add(_ h: SMTPServerHandler.Handle, now: NIODeadline, config: ReceiverSection) -> Admission {
        box.withLockedValue { s in
            s.handles[h.id] = h
            let client = s.clients.connect(h.client, now: now, unit: TimeAmount(config.clientRateTimeUnit))
            let change = s.stress.update(sessions: s.handles.count, maxSessions: config.maxSessions, threshold: config.stressThreshold)
            return Admission(sessions: s.handles.count, client: client, stress: change)
        }
    }

    /// A session ended; whether stress mode ended with it, and the sessions left.
    package func remove(_ id: ObjectIdentifier, config: ReceiverSection) -> (sessions: Int, stress: StressGauge.Change?) {
        box.withLockedValue { s in
            guard let h = s.handles.removeValue(forKey: id) else { return (s.handles.count, nil) }
            s.clients.disconnect(h.client)
            return (s.handles.count, s.stress.update(sessions: s.handles.count, maxSessions: config.maxSessions, threshold: config.stressThreshold))
        }
    }

    package func shutdownAll() {
        shuttingDown.withLockedValue { $0 = true }
        for h in box.withLockedValue({ Array($0.handles.values) }) { h.shutdown() }
    }
}
