import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// Asks scannerd for the before-queue verdict of a message still in `incoming/` (synchronous
/// mode, DESIGN.md §5): one `PRESCAN ID` line out, a `VERDICT` (with the verdict section) or
/// `UNSCANNED` back. Each event loop keeps one connection and sends every request of its
/// sessions over it; answers are matched by queue id. Any failure, and no answer within the
/// timeout, gives nil: the caller applies `ProcessingErrors`. The timeout is receiverd's
/// alone: it simply stops waiting, and an answer after it is dropped.
package final class PrescanClient: VerdictSource {
    package let endpoint: Endpoint
    private let links = NIOLockedValueBox<[ObjectIdentifier: PrescanLink]>([:])

    package init(endpoint: Endpoint) { self.endpoint = endpoint }

    /// Call on `loop`; the future completes there.
    package func verdict(id: String, timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<ScannerAnswer?> {
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
    private var waiting: [String: (promise: EventLoopPromise<ScannerAnswer?>, timer: Scheduled<Void>)] = [:]

    package init(endpoint: Endpoint, loop: any EventLoop) {
        self.endpoint = endpoint
        self.loop = loop
    }

    package func request(_ id: String, timeout: Duration) -> EventLoopFuture<ScannerAnswer?> {
        loop.preconditionInEventLoop()
        let promise = loop.makePromise(of: ScannerAnswer?.self)
        waiting[id]?.promise.succeed(nil)   // the same id twice cannot happen; never leave a promise behind
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) { [self] in answer(id, nil) }
        waiting[id] = (promise, timer)
        let connected = channel ?? connect()
        connected.whenComplete { [self] result in
            switch result {
            case .success(let ch) where ch.isActive:
                var line = ch.allocator.buffer(capacity: 40)
                IPCMessage.prescan(id: id).write(into: &line)
                ch.writeAndFlush(line).whenFailure { [self] _ in answer(id, nil) }
            default:
                answer(id, nil)
            }
        }
        return promise.futureResult
    }

    /// Completes a request once; later answers for it (a reply after the timeout) are ignored.
    package func answer(_ id: String, _ value: ScannerAnswer?) {
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

/// Hands each answer to the link; garbage closes the connection (and so fails what waits).
private final class VerdictReader: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    private let link: PrescanLink
    private var buffer = ByteBuffer()
    private var reader = IPCReader()

    package init(link: PrescanLink) { self.link = link }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        do {
            while let m = try reader.next(from: &buffer) {
                switch m {
                case .verdict(let id, let outcomes, let verdict): link.answer(id, .verdict(outcomes: outcomes, verdict: verdict))
                case .unscanned(let id, let reason): link.answer(id, .unscanned(reason: reason))
                default: throw IPCReader.Garbage(hint: "not an answer to PRESCAN")
                }
            }
        } catch {
            context.close(promise: nil)
            return
        }
        buffer.discardReadBytes()
    }

    package func channelInactive(context: ChannelHandlerContext) { link.closed() }
    package func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
