import NIOCore
import Shared

/// What became of one recipient in one delivery attempt.
enum RecipientOutcome: Sendable, Equatable {
    case delivered(Reply)
    case deferred(String)
    case failed(Reply)

    var text: String {
        switch self {
        case .delivered(let r), .failed(let r): return r.description
        case .deferred(let s): return s
        }
    }
}

/// One transaction to one destination: the recipients of a message that share a route.
struct DeliveryJob: Sendable {
    let envelope: Envelope
    /// Indices into `envelope.recipients` (for NOTIFY and ORCPT).
    let recipients: [Int]
    /// The address each of them is delivered to: its own, or a `redirect(…)` target.
    let addresses: [String]
    /// The message as it goes out: Postern's added header fields, then the spooled bytes.
    let message: ByteBuffer
    let finish: @Sendable ([RecipientOutcome]) -> Void
    /// Already retried once after a dead cached connection.
    var retried = false

    func retry() -> DeliveryJob {
        var j = self
        j.retried = true
        return j
    }

    func deferAll(_ why: String) { finish(recipients.map { _ in .deferred(why) }) }
}
