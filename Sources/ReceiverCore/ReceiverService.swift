import Glibc
import Logging
import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternUtil
import ServiceLifecycle

/// Accepts SMTP/LMTP connections until graceful shutdown, then stops accepting, lets each
/// session finish its transaction and say 421, and leaves no half-written file behind.
package struct ReceiverService: Service {
    package let ctx: ReceiverContext
    package let group: any EventLoopGroup
    /// Reads start small, as most sessions are commands and idle or trickling clients keep
    /// their read buffer, and grow while a message streams in; up to 256 KB rather than NIO's
    /// 64 KB, so that a 1 MB message is a few reads (and event loop turns), not sixteen.
    package static let recvAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)
    /// Reads while a message comes in (``SMTPServerHandler/enterData()``): from 64 KB, so that
    /// a 10 KB message is one read, not four of the sizes a command session grows through.
    package static let dataRecvAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 64 * 1024, maximum: 256 * 1024)

    /// The accept queue of a socket receiverd binds itself (systemd's units set their own).
    package static let backlog: Int32 = 1024

    package func run() async throws {
        recoverIncoming()
        let ctx = self.ctx
        // An acceptor on each event loop, taking turns: a session stays on the loop that accepted it.
        let bootstraps = group.makeIterator().map { loop in Self.bootstrap(loop, ctx: ctx) }
        let listeners = try await Listeners.open(
            names: ["smtp", "lmtp", "receiver"], endpoints: ctx.store.current.receiver.address, setting: "[Receiver] Address",
            perLoop: bootstraps, backlog: Self.backlog, logger: ctx.logger)
        Systemd.notify("READY=1\nSTATUS=accepting connections")
        DaemonStatus.publish(.ready, runDir: ctx.store.current.general.runDir, logger: ctx.logger)
        ctx.logger.info("ready", metadata: ["spool": "\(ctx.layout.root)"])

        try? await gracefulShutdown()

        Systemd.notify("STOPPING=1\nSTATUS=finishing sessions")
        DaemonStatus.publish(.stopping, runDir: ctx.store.current.general.runDir, logger: ctx.logger)
        ctx.logger.info("shutting down: no new connections")
        for l in listeners { try? await l.close() }
        ctx.sessions.shutdownAll()
        // Sessions in DATA get a little time to finish; systemd's TimeoutStopSec bounds us anyway.
        for _ in 0..<100 where ctx.sessions.count > 0 { try? await Task.sleep(for: .milliseconds(100)) }
        ctx.scanner.close()
        ctx.sender.close()
    }

    /// The bootstrap of one event loop's acceptor: its connections stay on `loop`.
    private static func bootstrap(_ loop: any EventLoop, ctx: ReceiverContext) -> ServerBootstrap {
        ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.backlog, value: backlog)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // A client that shuts down its sending side after pipelining its last commands
            // (Exim does: ... end of data, QUIT, then shutdown(SHUT_WR)) still reads our
            // replies; the session ends when it has answered everything (RFC 5321 §4.1.1.10).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: ReceiverService.recvAllocator)
            .childChannelInitializer { channel in
                let lmtp = channel.localAddress.flatMap { local in
                    ctx.store.current.receiver.address.first { $0.matches(local) }.map { $0.mailProtocol == .lmtp }
                } ?? (ctx.store.current.receiver.address.first?.mailProtocol == .lmtp)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SMTPServerHandler(ctx: ctx, lmtp: lmtp))
                }
            }
    }

    /// A file left in `incoming/` belonged to a session whose client never got a 250: the
    /// client still has the message. The file is kept in `corrupt/` for inspection, never read.
    private func recoverIncoming() {
        guard let names = try? SysCall.listDirectory(ctx.layout.directory(.incoming)) else { return }
        for name in names {
            if rename(ctx.layout.path(name, .incoming), ctx.layout.path(name, .corrupt)) == 0 {
                ctx.logger.warning("incomplete queue file from an earlier run moved to corrupt/", metadata: ["queue-id": "\(name)"])
            }
        }
    }
}

extension Endpoint {
    /// Whether a listening address is this endpoint (to tell SMTP from LMTP listeners).
    package func matches(_ address: SocketAddress) -> Bool {
        switch (location, address) {
        case (.inet(_, let port), .v4), (.inet(_, let port), .v6): return address.port == port
        case (.unix(let path), .unixDomainSocket): return address.pathname == path
        default: return false
        }
    }
}
