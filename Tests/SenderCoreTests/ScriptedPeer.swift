import Glibc
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

    /// Plays `steps`; returns how many of the client's writes were file regions (read here
    /// from their descriptors, as `sendfile` would).
    func play(_ steps: [Step]) async throws -> Int {
        // Octets, not Characters: a CR and its LF may come in two writes.
        var received: [UInt8] = []
        var regions = 0
        func mismatch(_ expected: String) -> Mismatch {
            channel.pipeline.fireChannelInactive()   // the client stops waiting: the test fails, never hangs
            return Mismatch(expected: expected, got: String(decoding: received, as: UTF8.self))
        }
        for step in steps {
            switch step {
            case .says(let text):
                try await channel.writeInbound(ByteBuffer(string: text))
            case .expects(let text):
                let want = Array(text.utf8)
                while received.count < want.count && want.starts(with: received) {
                    switch try await channel.waitForOutboundWrite(as: IOData.self) {
                    case .byteBuffer(let b):
                        received += b.readableBytesView
                    case .fileRegion(let r):
                        regions += 1
                        received += try Self.bytes(of: r)
                    }
                }
                guard received.starts(with: want) else { throw mismatch(text) }
                received.removeFirst(want.count)
            case .hangsUp:
                channel.pipeline.fireChannelInactive()
            }
        }
        guard received.isEmpty else { throw mismatch("") }
        return regions
    }

    static func bytes(of region: FileRegion) throws -> [UInt8] {
        try region.fileHandle.withUnsafeFileDescriptor { fd in
            [UInt8](unsafeUninitializedCapacity: region.readableBytes) { p, n in
                n = pread(fd, p.baseAddress, region.readableBytes, off_t(region.readerIndex))
                n = max(n, 0)
            }
        }
    }

    /// Runs one delivery of `job` by a ``ClientConnection`` against the script: greeting,
    /// EHLO/LHLO, the transaction. Returns the connection's view of it.
    static func deliver(_ job: DeliveryJob, lmtp: Bool = false, chunk: Int = MessageBody.chunk, script: [Step]) async throws
        -> (result: ClientConnection.TransactionResult, sentData: Bool) {
        let d = try await deliverCountingRegions(job, lmtp: lmtp, chunk: chunk, script: script)
        return (d.result, d.sentData)
    }

    /// ``deliver(_:lmtp:chunk:script:)`` that also tells how many file regions (`sendfile`)
    /// the client wrote, with spooled messages of `sendfileMinimum` octets or more allowed to
    /// go out that way.
    static func deliverCountingRegions(_ job: DeliveryJob, lmtp: Bool = false, chunk: Int = MessageBody.chunk,
                                       sendfileMinimum: Int = MessageBody.chunk, script: [Step]) async throws
        -> (result: ClientConnection.TransactionResult, sentData: Bool, regions: Int) {
        let channel = NIOAsyncTestingChannel()
        let wrapped = try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ReplyDecoder()))
            return try NIOAsyncChannel<Reply, IOData>(wrappingChannelSynchronously: channel)
        }
        let peer = ScriptedPeer(channel: channel)
        async let played = peer.play(script)
        let outcome = try await wrapped.executeThenClose { inbound, outbound in
            var conn = ClientConnection(replies: inbound.makeAsyncIterator(), outbound: outbound, eventLoop: channel.eventLoop,
                                        lmtp: lmtp, hostname: "postern.test", logger: Logger(label: "test"))
            conn.messageChunk = chunk
            conn.sendfileMinimum = sendfileMinimum
            if let refusal = try await conn.open() { throw Mismatch(expected: "a greeting and 250 to EHLO", got: "\(refusal)") }
            let result = await conn.deliver(job)
            return (result, conn.sentData)
        }
        let regions = try await played
        return (outcome.0, outcome.1, regions)
    }

    /// A job for `addresses` with the message `body`; its outcomes are read from the result.
    static func job(from sender: String = "sender@example.org", to addresses: [String], body: String,
                    mailParameters: MailParameters = MailParameters()) -> DeliveryJob {
        let envelope = Envelope(id: "CLIENTTEST", arrival: 0, mailFrom: sender, mailParameters: mailParameters,
                                recipients: addresses.map { Recipient(address: $0) })
        return DeliveryJob(envelope: envelope, recipients: Array(addresses.indices), addresses: addresses,
                           message: .bytes(ByteBuffer(string: body)), finish: { _ in })
    }
}

extension RecipientOutcome {
    /// `delivered 250`, `failed 550`, `deferred 452 4.2.2 over quota`: short enough to compare.
    var summary: String {
        switch self {
        case .delivered(let r, _): "delivered \(r.code)"
        case .failed(let r): "failed \(r.code)"
        case .deferred(let why): "deferred \(why)"
        }
    }
}
