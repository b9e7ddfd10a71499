import NIOCore
import PosternSMTP
import PosternSpool

/// scannerd's answer to `PRESCAN` (docs/ipc.md).
package enum ScannerAnswer: Sendable, Equatable {
    /// Each recipient's outcome and the verdict receiverd writes into its file.
    case verdict(outcomes: [Outcome], verdict: Verdict)
    /// scannerd could not scan the message: `ProcessingErrors` at once.
    case unscanned(reason: String)
}

/// Where synchronous mode gets its verdicts: scannerd over its socket (``PrescanClient``), or a
/// stand-in in tests.
package protocol VerdictSource: Sendable {
    /// scannerd's answer for message `id`, or nil when none comes within `timeout`. Call on
    /// `loop`; the future completes there and never fails.
    func verdict(id: String, timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<ScannerAnswer?>
}
