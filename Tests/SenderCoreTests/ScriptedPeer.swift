import Logging
import NIOCore
import NIOEmbedded
import PosternSMTP
import PosternSpool
@testable import SenderCore

/// A next hop that plays a script on a `NIOAsyncTestingChannel`: it waits for exactly the
/// bytes the client should send, answers, or hangs up. A client that sends something else
/// fails the test with both texts.
struct ScriptedPeer {
    enum Step {
        /// The server writes this.
        case says(String)
        /// The client must send exactly this next (its writes may be cut or joined anyhow).
        case expects(String)
        /// The server hangs up.
        case hangsUp
    }

    struct Mismatch: Error, CustomStringConvertible {
        var expected: String
        var got: String
        var description: String { "client sent \(got.debugDescription), script expected \(expected.debugDescription)" }
    }

    let channel: NIOAsyncTestingChannel

    func play(_ steps: [Step]) async throws {
        var received = ""
        for step in steps {
            switch step {
            case .says(let text):
                try await channel.writeInbound(ByteBuffer(string: text))
            case .expects(let text):
                while received.utf8.count < text.utf8.count && text.hasPrefix(received) {
                    received += String(buffer: try await channel.waitForOutboundWrite(as: ByteBuffer.self))
                }
                guard received.hasPrefix(text) else { throw Mismatch(expected: text, got: received) }
                received.removeFirst(text.count)
            case .hangsUp:
                channel.pipeline.fireChannelInactive()
            }
        }
        guard received.isEmpty else { throw Mismatch(expected: "", got: received) }
    }

    /// Runs one delivery of `job` by a ``ClientConnection`` against the script: greeting,
    /// EHLO/LHLO, the transaction. Returns the connection's view of it.
    static func deliver(_ job: DeliveryJob, lmtp: Bool = false, script: [Step]) async throws
        -> (result: ClientConnection.TransactionResult, sentData: Bool) {
        let channel = NIOAsyncTestingChannel()
        let wrapped = try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ReplyDecoder()))
            return try NIOAsyncChannel<Reply, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
        let peer = ScriptedPeer(channel: channel)
        async let played: Void = peer.play(script)
        let outcome = try await wrapped.executeThenClose { inbound, outbound in
            var conn = ClientConnection(replies: inbound.makeAsyncIterator(), outbound: outbound, lmtp: lmtp,
                                        hostname: "postern.test", logger: Logger(label: "test"))
            if let refusal = try await conn.open() { throw Mismatch(expected: "a greeting and 250 to EHLO", got: "\(refusal)") }
            let result = await conn.deliver(job)
            return (result, conn.sentData)
        }
        try await played
        return outcome
    }

    /// A job for `addresses` with the message `body`; its outcomes are read from the result.
    static func job(from sender: String = "sender@example.org", to addresses: [String], body: String,
                    mailParameters: MailParameters = MailParameters()) -> DeliveryJob {
        let envelope = Envelope(id: "CLIENTTEST", arrival: 0, mailFrom: sender, mailParameters: mailParameters,
                                recipients: addresses.map { Recipient(address: $0) })
        return DeliveryJob(envelope: envelope, recipients: Array(addresses.indices), addresses: addresses,
                           message: ByteBuffer(string: body), finish: { _ in })
    }
}

extension RecipientOutcome {
    /// `delivered 250`, `failed 550`, `deferred 452 4.2.2 over quota`: short enough to compare.
    var summary: String {
        switch self {
        case .delivered(let r): "delivered \(r.code)"
        case .failed(let r): "failed \(r.code)"
        case .deferred(let why): "deferred \(why)"
        }
    }
}
