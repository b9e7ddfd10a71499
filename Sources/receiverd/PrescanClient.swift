import NIOCore
import NIOPosix
import Shared

/// Asks scannerd for the before-queue verdict of a message still in `incoming/` (synchronous
/// mode, DESIGN.md §5): one connection per message, one `PRESCAN` line out, one `VERDICT`
/// line back. Any failure, and no answer within the timeout, gives nil: the caller applies
/// `ProcessingErrors`.
struct PrescanClient: Sendable {
    let endpoint: Endpoint

    func verdict(id: String, timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<(codes: [Int], text: String)?> {
        let promise = Completion(loop.makePromise(of: (codes: [Int], text: String)?.self))
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(5))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(VerdictReader(id: id, promise: promise)) }
            }
        let connected: EventLoopFuture<any Channel>
        switch endpoint.location {
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        case .inet(let host, let port): connected = bootstrap.connect(host: host, port: port)
        }
        connected.whenComplete { result in
            switch result {
            case .success(let channel):
                var request = channel.allocator.buffer(capacity: 40)
                IPCMessage.prescan(id: id).write(into: &request)
                channel.writeAndFlush(request, promise: nil)
                let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                                               + timeout.components.attoseconds / 1_000_000_000)) {
                    promise.succeed(nil)
                    channel.close(promise: nil)
                }
                promise.promise.futureResult.whenComplete { _ in timer.cancel(); channel.close(promise: nil) }
            case .failure:
                promise.succeed(nil)
            }
        }
        return promise.promise.futureResult
    }
}

/// The timer, the reader and a failed connect may each try to answer; the first one wins.
/// Only touched on the request's event loop.
private final class Completion: @unchecked Sendable {
    let promise: EventLoopPromise<(codes: [Int], text: String)?>
    private var done = false
    init(_ promise: EventLoopPromise<(codes: [Int], text: String)?>) { self.promise = promise }
    func succeed(_ value: (codes: [Int], text: String)?) {
        guard !done else { return }
        done = true
        promise.succeed(value)
    }
}

/// Reads the one VERDICT line; a closed connection or garbage is no verdict.
private final class VerdictReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let id: String
    private let promise: Completion
    private var buffer = ByteBuffer()
    private var framer = LineFramer(limit: IPCMessage.maxLine)

    init(id: String, promise: Completion) {
        self.id = id
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        guard let framed = framer.next(from: &buffer) else { return }
        switch framed {
        case .line(let l), .bareLF(let l):
            if case .verdict(let got, let codes, let text)? = IPCMessage.parse(Substring(String(buffer: l))), got == id {
                promise.succeed((codes, text))
            }
        case .overlong:
            break
        }
        promise.succeed(nil)   // anything else is no verdict
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) { promise.succeed(nil) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
