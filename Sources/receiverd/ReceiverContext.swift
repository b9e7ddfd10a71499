import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Shared

/// What every session of one receiverd shares.
struct ReceiverContext: Sendable {
    /// The configuration in force; each session takes a snapshot when it starts.
    let store: ConfigStore
    let layout: SpoolLayout
    let threadPool: NIOThreadPool
    /// Shares the fsyncs of new queue files among concurrent sessions.
    let committer: GroupCommitter
    let scanner: WakeupLink
    /// Synchronous mode: asks scannerd for the before-queue verdict.
    let prescan: PrescanClient
    let loopGuard: LoopGuard
    let sessions: SessionRegistry
    /// For STARTTLS, when `[Receiver] TLSCertificate` and `TLSKey` are set.
    let tls: NIOSSLContext?
    let metrics: ReceiverMetrics
    let logger: Logger
}

/// Live sessions, so shutdown can tell each one to finish and say 421.
final class SessionRegistry: Sendable {
    private let box = NIOLockedValueBox<[ObjectIdentifier: SMTPServerHandler.Handle]>([:])
    private let shuttingDown = NIOLockedValueBox(false)

    private let receiving = NIOLockedValueBox(0)

    var count: Int { box.withLockedValue { $0.count } }
    /// Sessions reading a message now: their commits will follow within moments.
    var inData: Int { receiving.withLockedValue { $0 } }
    func dataStarted() { receiving.withLockedValue { $0 += 1 } }
    func dataEnded() { receiving.withLockedValue { $0 -= 1 } }
    var isShuttingDown: Bool { shuttingDown.withLockedValue { $0 } }

    func add(_ h: SMTPServerHandler.Handle) { box.withLockedValue { $0[h.id] = h } }
    func remove(_ id: ObjectIdentifier) { box.withLockedValue { _ = $0.removeValue(forKey: id) } }

    func shutdownAll() {
        shuttingDown.withLockedValue { $0 = true }
        for h in box.withLockedValue({ Array($0.values) }) { h.shutdown() }
    }
}
