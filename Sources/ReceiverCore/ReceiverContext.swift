import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PosternRuntime
import PosternSpool

/// What every session of one receiverd shares.
package struct ReceiverContext: Sendable {
    /// The configuration in force; each session takes a snapshot when it starts.
    package let store: ConfigStore
    package let layout: SpoolLayout
    package let threadPool: NIOThreadPool
    /// Shares the fsyncs of new queue files among concurrent sessions.
    package let committer: GroupCommitter
    /// Wakes scannerd for a message in `scan/`.
    package let scanner: WakeupLink
    /// Wakes senderd for a message whose before-queue verdict sent it to `outgoing/`.
    package let sender: WakeupLink
    /// Synchronous mode: asks scannerd for the before-queue verdict.
    package let prescan: any VerdictSource
    package let loopGuard: LoopGuard
    package let sessions: SessionRegistry
    /// For STARTTLS, when `[Receiver] TLSCertificate` and `TLSKey` are set.
    package let tls: NIOSSLContext?
    package let metrics: ReceiverMetrics
    package let logger: Logger

    package init(store: ConfigStore, layout: SpoolLayout, threadPool: NIOThreadPool, committer: GroupCommitter,
                 scanner: WakeupLink, sender: WakeupLink, prescan: any VerdictSource, loopGuard: LoopGuard,
                 sessions: SessionRegistry, tls: NIOSSLContext?, metrics: ReceiverMetrics, logger: Logger) {
        self.store = store
        self.layout = layout
        self.threadPool = threadPool
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

/// Live sessions, so shutdown can tell each one to finish and say 421.
package final class SessionRegistry: Sendable {
    private let box = NIOLockedValueBox<[ObjectIdentifier: SMTPServerHandler.Handle]>([:])
    private let shuttingDown = NIOLockedValueBox(false)

    private let receiving = NIOLockedValueBox(0)

    package var count: Int { box.withLockedValue { $0.count } }
    /// Sessions reading a message now: their commits will follow within moments.
    package var inData: Int { receiving.withLockedValue { $0 } }
    package func dataStarted() { receiving.withLockedValue { $0 += 1 } }
    package func dataEnded() { receiving.withLockedValue { $0 -= 1 } }
    package var isShuttingDown: Bool { shuttingDown.withLockedValue { $0 } }

    package func add(_ h: SMTPServerHandler.Handle) { box.withLockedValue { $0[h.id] = h } }
    package func remove(_ id: ObjectIdentifier) { box.withLockedValue { _ = $0.removeValue(forKey: id) } }

    package func shutdownAll() {
        shuttingDown.withLockedValue { $0 = true }
        for h in box.withLockedValue({ Array($0.values) }) { h.shutdown() }
    }
}
