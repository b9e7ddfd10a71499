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
///
/// There is a connection per event loop of `group`, made when a message is first sent from
/// that loop: a session's wake-up goes out on the loop that ran the session, with no hand-off
/// to another thread (an eventfd write, a wake-up, a context switch, each way). A sender on
/// any other thread uses the connection of one loop. The peers serve any number of
/// connections, and wake-ups need no order among themselves.
public final class WakeupLink: Sendable {
    private let endpoint: Endpoint
    private let group: any EventLoopGroup
    private let logger: Logger
    /// The connections, by the loop they live on.
    private let links = NIOLockedValueBox<[ObjectIdentifier: Link]>([:])

    /// A connection being made or made, and whether a flush is queued on its event loop.
    private struct Link {
        let loop: any EventLoop
        let future: EventLoopFuture<any Channel>
        let flushPending: LoopOnlyFlag
    }

    public init(endpoint: Endpoint, group: any EventLoopGroup, logger: Logger) {
        self.endpoint = endpoint
        self.group = group
        self.logger = logger
    }

    /// Connections open or being opened now (one per event loop that sent).
    public var connections: Int { links.withLockedValue { $0.count } }

    public func send(_ message: IPCMessage) {
        var buffer = ByteBuffer()
        message.write(into: &buffer)
        let link = self.link()
        let payload = buffer
        link.future.whenComplete { [self] result in
            switch result {
            case .success(let ch) where ch.isActive:
                ch.write(payload).whenFailure { [self] _ in reset(link.future) }
                Self.flushSoon(ch, link.flushPending)
            case .success:
                reset(link.future)
                logger.debug("peer link closed; message left for the directory scan", metadata: ["socket": "\(endpoint)"])
            case .failure(let error):
                reset(link.future)
                logger.debug("peer not reachable; message left for the directory scan", metadata: ["socket": "\(endpoint)", "error": "\(error)"])
            }
        }
    }

    /// The connection of the calling thread's event loop, or, off `group`'s loops, of the
    /// first loop that has one (else `group.next()`); connected here if there is none yet.
    private func link() -> Link {
        let here = MultiThreadedEventLoopGroup.currentEventLoop
        return links.withLockedValue { links in
            if let here, let l = links[ObjectIdentifier(here)] { return l }
            let loop = here.flatMap { h in group.makeIterator().first { $0 === h } } ?? links.values.first?.loop ?? group.next()
            if let l = links[ObjectIdentifier(loop)] { return l }
            let bootstrap = ClientBootstrap(group: loop)
                .channelInitializer { ch in ch.pipeline.addHandler(DiscardInbound()) }
            let f: EventLoopFuture<any Channel>
            switch endpoint.location {
            case .unix(let path): f = bootstrap.connect(unixDomainSocketPath: path)
            case .inet(let host, let port): f = bootstrap.connect(host: host, port: port)
            }
            // A peer that restarts closes the connection: the next message connects again
            // instead of being dropped on the dead one.
            f.whenSuccess { [self] ch in ch.closeFuture.whenComplete { [self] _ in reset(f) } }
            let l = Link(loop: loop, future: f, flushPending: LoopOnlyFlag())
            links[ObjectIdentifier(loop)] = l
            return l
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
        links.withLockedValue { links in
            if let k = links.first(where: { $0.value.future === f })?.key { links[k] = nil }
        }
        f.whenSuccess { $0.close(promise: nil) }
    }

    public func close() {
        links.withLockedValue { links in
            for l in links.values { l.future.whenSuccess { $0.close(promise: nil) } }
            links = [:]
        }
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
