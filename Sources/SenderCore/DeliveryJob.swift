import NIOCore
import PosternSMTP
import PosternSpool

/// What became of one recipient in one delivery attempt.
package enum RecipientOutcome: Sendable, Equatable {
    /// Taken by the next hop; `nextHopReports` when it offers DSN and so got NOTIFY and ORCPT:
    /// further reports are its business (RFC 3461 §5.2.2), otherwise a NOTIFY=SUCCESS is ours.
    case delivered(Reply, nextHopReports: Bool)
    case deferred(String)
    case failed(Reply)

    package var text: String {
        switch self {
        case .delivered(let r, _), .failed(let r): return r.description
        case .deferred(let s): return s
        }
    }
}

/// One transaction to one destination: the recipients of a message that share a route.
package struct DeliveryJob: Sendable {
    package let envelope: Envelope
    /// Indices into `envelope.recipients` (for NOTIFY and ORCPT).
    package let recipients: [Int]
    /// The address each of them is delivered to: its own, or a `redirect(…)` target.
    package let addresses: [String]
    /// The spooled message bytes (or the converted ones), sent after `head`.
    package let message: MessageBody
    /// What goes out before `message`: Postern's added header fields. Apart from it, so that
    /// the message is never copied to put them in front (the two go out in one write).
    package var head = ByteBuffer()
    package let finish: @Sendable ([RecipientOutcome]) -> Void
    /// Already retried once after a dead cached connection.
    package var retried = false

    package func retry() -> DeliveryJob {
        var j = self
        j.retried = true
        return j
    }

    /// Octets that go out: the head and the message.
    package var size: Int { head.readableBytes + message.count }

    package func deferAll(_ why: String) { finish(recipients.map { _ in .deferred(why) }) }
}
