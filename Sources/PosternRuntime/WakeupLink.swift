import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternSpool

/// A lazily (re)connected one-way link to another daemon's unix socket. Sending never blocks
/// nor fails the caller: if the peer is down, the message is dropped and the peer finds the
/// work by scanning its spool directory when it comes back.
public final class WakeupLink: Sendable {
    private let endpoint: Endpoint
    private let group: any EventLoopGroup
    private let logger: Logger
    /// The connection, and whether a flush is queued on its event loop (touched only there).
    private let channel = NIOLockedValueBox<(future: EventLoopFuture<any Channel>, flushPending: LoopOnlyFlag)?>(nil)

    public init(endpoint: Endpoint, group: any EventLoopGroup, logger: Logger) {
        self.endpoint = endpoint
        self.group = group
        self.logger = logger
    }

    /// Connections open or being opened now: 0 or 1 (for the tests).
    package var connections: Int { channel.withLockedValue { $0 == nil ? 0 : 1 } }

    public func send(_ message: IPCMessage) {
        var buffer = ByteBuffer()
        message.write(into: &buffer)
        let (future, flushPending) = channel.withLockedValue { current -> (EventLoopFuture<any Channel>, LoopOnlyFlag) in
            if let current { return current }
            let bootstrap = ClientBootstrap(group: group)
                .channelInitializer { ch in ch.pipeline.addHandler(DiscardInbound()) }
            let f: EventLoopFuture<any Channel>
            switch endpoint.location {
            case .unix(let path): f = bootstrap.connect(unixDomainSocketPath: path)
            case .inet(let host, let port): f = bootstrap.connect(host: host, port: port)
            }
            // A peer that restarts closes the connection: the next message connects again
            // instead of being dropped on the dead one.
            f.whenSuccess { [self] ch in ch.closeFuture.whenComplete { [self] _ in reset(f) } }
            current = (f, LoopOnlyFlag())
            return current!
        }
        let payload = buffer
        future.whenComplete { [self] result in
            switch result {
            case .success(let ch) where ch.isActive:
                ch.write(payload).whenFailure { [self] _ in reset(future) }
                Self.flushSoon(ch, flushPending)
            case .success:
                reset(future)
                logger.debug("peer link closed; message left for the directory scan", metadata: ["socket": "\(endpoint)"])
            case .failure(let error):
                reset(future)
                logger.debug("peer not reachable; message left for the directory scan", metadata: ["socket": "\(endpoint)", "error": "\(error)"])
            }
        }
    }

    /// Messages sent in one turn of the channel's event loop (a group commit's batch) go out
    /// in one write: the flush waits for the tasks already queued.
    private static func flushSoon(_ ch: any Channel, _ flushPending: LoopOnlyFlag) {
        guard !flushPending.value else { return }
        flushPending.value = true
        ch.eventLoop.execute { [flushPending] in
            flushPending.value = false
            ch.flush()
        }
    }

    private func reset(_ f: EventLoopFuture<any Channel>) {
        channel.withLockedValue { if $0?.future === f { $0 = nil } }
        f.whenSuccess { $0.close(promise: nil) }
    }

    public func close() {
        channel.withLockedValue { $0?.future.whenSuccess { $0.close(promise: nil) }; $0 = nil }
    }
}

/// A flag read and written only on one event loop.
private final class LoopOnlyFlag: @unchecked Sendable {
    var value = false
}

/// The link is one-way; whatever the peer says is ignored.
package final class DiscardInbound: ChannelInboundHandler, Sendable {
    package typealias InboundIn = ByteBuffer
    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Serves an IPC socket: every well-formed message is handed to `onMessage`; garbage closes
/// the connection. Requests that want an answer (PRESCAN) get a `reply` function, callable
/// from any thread.
public final class IPCServerHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = ByteBuffer
    public typealias Reply = @Sendable (IPCMessage) -> Void
    private var buffer = ByteBuffer()
    private var reader = IPCReader()
    private let onMessage: @Sendable (IPCMessage, @escaping Reply) -> Void

    public init(onMessage: @escaping @Sendable (IPCMessage) -> Void) { self.onMessage = { m, _ in onMessage(m) } }

    public init(onRequest: @escaping @Sendable (IPCMessage, @escaping Reply) -> Void) { self.onMessage = onRequest }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        do {
            while let m = try reader.next(from: &buffer) {
                let channel = context.channel
                onMessage(m) { answer in
                    var out = channel.allocator.buffer(capacity: 64)
                    answer.write(into: &out)
                    channel.writeAndFlush(out, promise: nil)
                }
            }
        } catch {
            context.close(promise: nil)
            return
        }
        buffer.discardReadBytes()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
