import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternSpool
@testable import SenderCore
import Testing

/// The pool's connections over real sockets: kept for the next message while it comes within
/// the idle time, closed with QUIT once none came.
@Suite struct DestinationPoolTests {
    @Test func anIdleConnectionSaysQuitAfterTheIdleTimeAndIsReusedBefore() async throws {
        let server = try await SinkServer.start()
        defer { server.close() }
        let idle = Duration.milliseconds(400)
        let pool = DestinationPool(
            endpoint: Endpoint(location: .inet(host: "127.0.0.1", port: server.port)), tls: .none,
            group: MultiThreadedEventLoopGroup.singleton,
            settings: SenderSettings(hostname: "pool.test", maxConnections: 4, connectTimeout: .seconds(5), readTimeout: .seconds(5), idleTime: idle),
            logger: Logger(label: "test")) {
            NextHopPolicy(endpoint: Endpoint(location: .inet(host: "127.0.0.1", port: server.port)), tls: .none,
                          sender: SenderSection(), cache: NextHopTLS())
        }
        // Two messages, the second well within the idle time of the first: one connection.
        for n in 0..<2 {
            #expect(try await Self.deliver(n, through: pool) == ["delivered 250"])
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(server.events == ["connect"])
        // Then nothing: QUIT after the idle time, not before.
        try await Task.sleep(for: idle / 2)
        #expect(!server.events.contains("QUIT"))
        let deadline = ContinuousClock.now + .seconds(5)
        while !server.events.contains("closed") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.events == ["connect", "QUIT", "closed"])
        // A message after that opens a new connection.
        #expect(try await Self.deliver(2, through: pool) == ["delivered 250"])
        #expect(server.events.filter { $0 == "connect" }.count == 2)
    }

    private static func deliver(_ n: Int, through pool: DestinationPool) async throws -> [String] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[String], any Error>) in
            let envelope = Envelope(id: "POOLTEST\(n)", arrival: 0, mailFrom: "a@example.org", recipients: [Recipient(address: "b@example.org")])
            pool.submit(DeliveryJob(envelope: envelope, recipients: [0], addresses: ["b@example.org"],
                                    message: .bytes(ByteBuffer(string: "Subject: \(n)\r\n\r\nx\r\n")),
                                    finish: { c.resume(returning: $0.map(\.summary)) }))
        }
    }
}

/// An SMTP server that accepts every message and notes `connect`, `QUIT` and `closed`.
private final class SinkServer: Sendable {
    let channel: any Channel
    let port: Int
    private let log: NIOLockedValueBox<[String]>
    var events: [String] { log.withLockedValue { $0 } }

    private init(channel: any Channel, log: NIOLockedValueBox<[String]>) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.log = log
    }

    static func start() async throws -> SinkServer {
        let log = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Session(log: log)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SinkServer(channel: channel, log: log)
    }

    func close() { channel.close(promise: nil) }

    private final class Session: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let log: NIOLockedValueBox<[String]>
        var pending: [UInt8] = []
        var inData = false
        init(log: NIOLockedValueBox<[String]>) { self.log = log }

        func channelActive(context: ChannelHandlerContext) {
            log.withLockedValue { $0.append("connect") }
            send("220 sink.test ESMTP", context)
        }

        func channelInactive(context: ChannelHandlerContext) {
            log.withLockedValue { $0.append("closed") }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += unwrapInboundIn(data).readableBytesView
            while let cr = pending.indices.dropLast().first(where: { pending[$0] == 13 && pending[$0 + 1] == 10 }) {
                let line = String(decoding: pending[..<cr], as: UTF8.self)
                pending.removeFirst(cr + 2)
                if inData {
                    if line == "." { inData = false; send("250 2.0.0 Ok", context) }
                    continue
                }
                switch line.prefix(4).uppercased() {
                case "EHLO": send("250-sink.test\r\n250 PIPELINING", context)
                case "DATA": inData = true; send("354 go ahead", context)
                case "QUIT":
                    log.withLockedValue { $0.append("QUIT") }
                    send("221 bye", context)
                    context.close(promise: nil)
                default: send("250 Ok", context)
                }
            }
        }

        private func send(_ text: String, _ context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
        }
    }
}
