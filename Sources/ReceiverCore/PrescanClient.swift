import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// Asks scannerd for the before-queue verdict of a message still in `incoming/` (synchronous
/// mode, DESIGN.md §5): one `PRESCAN ID` line out, one `VERDICT ID …` line back. Each event
/// loop keeps one connection and sends every request of its sessions over it; replies are
/// matched by queue id. Any failure, and no answer within the timeout, gives nil: the caller
/// applies `ProcessingErrors`.
package final class PrescanClient: Sendable {
    package typealias Answer = (codes: [Int], text: String)
    package let endpoint: Endpoint
    private let links = NIOLockedValueBox<[ObjectIdentifier: PrescanLink]>([:])

    package init(endpoint: Endpoint) { self.endpoint = endpoint }

    /// Call on `loop`; the future completes there.
    package func verdict(id: String, timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<Answer?> {
        let link = links.withLockedValue { links in
            if let link = links[ObjectIdentifier(loop)] { return link }
            let link = PrescanLink(endpoint: endpoint, loop: loop)
            links[ObjectIdentifier(loop)] = link
            return link
        }
        return link.request(id, timeout: timeout)
    }
}

/// The connection of one event loop and its requests in flight. Only touched on that loop.
package final class PrescanLink: @unchecked Sendable {
    private let endpoint: Endpoint
    private let loop: any EventLoop
    private var channel: EventLoopFuture<any Channel>?
    private var waiting: [String: (promise: EventLoopPromise<PrescanClient.Answer?>, timer: Scheduled<Void>)] = [:]

    package init(endpoint: Endpoint, loop: any EventLoop) {
        self.endpoint = endpoint
        self.loop = loop
    }

    package func request(_ id: String, timeout: Duration) -> EventLoopFuture<PrescanClient.Answer?> {
        loop.preconditionInEventLoop()
        let promise = loop.makePromise(of: PrescanClient.Answer?.self)
        waiting[id]?.promise.succeed(nil)   // the same id twice cannot happen; never leave a promise behind
        let deadline = Monotonic.now() + Monotonic.nanoseconds(timeout)
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { [self] in answer(id, nil) }
        waiting[id] = (promise, timer)
        let connected = channel ?? connect()
        connected.whenComplete { [self] result in
            switch result {
            case .success(let ch) where ch.isActive:
                var line = ch.allocator.buffer(capacity: 40)
                IPCMessage.prescan(id: id, deadline: deadline).write(into: &line)
                ch.writeAndFlush(line).whenFailure { [self] _ in answer(id, nil) }
            default:
                answer(id, nil)
            }
        }
        return promise.futureResult
    }

    /// Completes a request once; later answers for it (a reply after the timeout) are ignored.
    package func answer(_ id: String, _ value: PrescanClient.Answer?) {
        guard let entry = waiting.removeValue(forKey: id) else { return }
        entry.timer.cancel()
        entry.promise.succeed(value)
    }

    /// The connection went away: every request on it is unanswered.
    package func closed() {
        channel = nil
        for id in Array(waiting.keys) { answer(id, nil) }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(5))
            .channelInitializer { [self] ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(VerdictReader(link: self)) }
            }
        let f: EventLoopFuture<any Channel>
        switch endpoint.location {
        case .unix(let path): f = bootstrap.connect(unixDomainSocketPath: path)
        case .inet(let host, let port): f = bootstrap.connect(host: host, port: port)
        }
        channel = f
        f.whenFailure { [self] _ in if channel === f { channel = nil } }
        return f
    }
}

extension TimeAmount {
    package init(_ d: Duration) {
        self = .nanoseconds(Int64(Monotonic.nanoseconds(d)))
    }
}

/// Hands each VERDICT line to the link; garbage closes the connection (and so fails what waits).
private final class VerdictReader: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    private let link: PrescanLink
    private var buffer = ByteBuffer()
    private var framer = LineFramer(limit: IPCMessage.maxLine)

    package init(link: PrescanLink) { self.link = link }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        while let framed = framer.next(from: &buffer) {
            switch framed {
            case .line(let l), .bareLF(let l):
                guard case .verdict(let id, let codes, let text)? = IPCMessage.parse(Substring(String(buffer: l))) else {
                    context.close(promise: nil)
                    return
                }
                link.answer(id, (codes, text))
            case .overlong:
                context.close(promise: nil)
                return
            }
        }
        buffer.discardReadBytes()
    }

    package func channelInactive(context: ChannelHandlerContext) { link.closed() }
    package func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
