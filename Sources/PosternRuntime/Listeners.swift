import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternUtil

/// Opens a daemon's listening sockets: those systemd (or `posternctl run`) passed with one of
/// `names`, or else binds `endpoints` itself. Never sets SO_REUSEADDR on an adopted socket.
public enum Listeners {
    /// `setting` names the configuration key of `endpoints` (`[Receiver] Address`) for the
    /// notice logged when systemd's sockets are not what it says: the key is then ignored.
    public static func open(
        names: Set<String>, endpoints: [Endpoint], setting: String, bootstrap: ServerBootstrap, logger: Logger
    ) async throws -> [any Channel] {
        try await open(names: names, endpoints: endpoints, setting: setting, perLoop: [bootstrap], backlog: 128, logger: logger)
    }

    /// The same, each socket accepted on by every bootstrap of `perLoop`: one per event loop,
    /// made with that loop as its group and child group. A connection then stays on the loop
    /// that accepted it, where NIO's one acceptor hands each to another loop and back (three
    /// wake-ups across threads before the greeting). The loops share each socket (a `dup` of
    /// it each) and take turns (``AcceptRing``). A socket bound here (none passed) listens
    /// with `backlog`, as the bootstraps' own `.backlog` option would have it.
    public static func open(
        names: Set<String>, endpoints: [Endpoint], setting: String, perLoop: [ServerBootstrap], backlog: Int32, logger: Logger
    ) async throws -> [any Channel] {
        precondition(!perLoop.isEmpty)
        let channels = try await listen(names: names, endpoints: endpoints, setting: setting, bootstraps: perLoop, backlog: backlog, logger: logger)
        // A connection NIO closes before any handler of ours sees it (a socket option the
        // kernel refuses, say) would otherwise vanish without a word: the error reaches the
        // listening channel only, after NIO's own accept handler.
        for c in channels { try await c.pipeline.addHandler(AcceptErrorLogger(logger: logger)).get() }
        return channels
    }

    private static func listen(
        names: Set<String>, endpoints: [Endpoint], setting: String, bootstraps: [ServerBootstrap], backlog: Int32, logger: Logger
    ) async throws -> [any Channel] {
        let passed = Systemd.listenFDs()
        if !passed.isEmpty {
            var channels: [any Channel] = []
            var unlike: [String] = []
            for l in passed {
                guard names.contains(l.name) || (passed.count == 1 && l.name == "unknown") else {
                    logger.warning("ignoring passed socket with unexpected name", metadata: ["fd": "\(l.fd)", "name": "\(l.name)"])
                    close(l.fd)
                    continue
                }
                logger.info("adopting passed socket", metadata: ["fd": "\(l.fd)", "name": "\(l.name)"])
                let each = try await adopt(l.fd, bootstraps: bootstraps)
                if let local = each.first?.localAddress, !endpoints.contains(where: { matches($0, local) }) {
                    unlike.append("'\(l.name)' on \(describe(local))")
                }
                channels += each
            }
            if !unlike.isEmpty {
                // systemd's .socket unit decides where we listen; a different address in the
                // configuration would otherwise be ignored without a word.
                logger.notice("\(setting) \(endpoints.map(\.description).joined(separator: ", ")) is ignored: listening on the socket(s) systemd passed instead: \(unlike.joined(separator: ", "))")
            }
            if !channels.isEmpty { return channels }
        }
        var channels: [any Channel] = []
        for e in endpoints {
            if bootstraps.count > 1 {
                channels += try await adopt(try bind(e, backlog: backlog), bootstraps: bootstraps)
                logger.info("listening", metadata: ["address": "\(e)"])
                continue
            }
            let bootstrap = bootstraps[0]
            switch e.location {
            case .inet(let host, let port):
                channels.append(try await bootstrap
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: port).get())
            case .unix(let path):
                try? SysCall.mkdirs(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]), mode: 0o755)
                channels.append(try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get())
            }
            logger.info("listening", metadata: ["address": "\(e)"])
        }
        return channels
    }

    /// `fd` adopted by each of `bootstraps`, the first taking `fd` itself, the others a `dup`
    /// of it; each channel closes its own descriptor. With several, they take turns
    /// (``AcceptRing``), the first one first.
    package static func adopt(_ fd: Int32, bootstraps: [ServerBootstrap]) async throws -> [any Channel] {
        if bootstraps.count == 1 { return [try await adopt(fd, bootstrap: bootstraps[0])] }
        let ring = AcceptRing()
        var channels: [any Channel] = []
        do {
            for (k, b) in bootstraps.enumerated() {
                let own = k == 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 0)
                if own < 0 { throw SpoolError("dup", "fd \(fd)") }
                // A failed adoption has closed the descriptor with its channel (NIO closes
                // it on a failed registration, `adopt` on a failed listen): not closed again.
                let channel = try await adopt(own, bootstrap: b.serverChannelOption(.autoRead, value: false))
                channels.append(channel)
                try await channel.pipeline.addHandler(AcceptTurn(ring: ring, index: k), position: .first).get()
            }
        } catch {
            for c in channels { try? await c.close() }
            throw error
        }
        ring.start(channels)
        return channels
    }

    /// A socket bound and listening at `e`, as a bootstrap binds one: SO_REUSEADDR on TCP;
    /// for a unix socket, its directory made and a socket file left by an earlier run replaced.
    package static func bind(_ e: Endpoint, backlog: Int32) throws -> Int32 {
        let address: SocketAddress
        switch e.location {
        case .inet(let host, let port):
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        case .unix(let path):
            try? SysCall.mkdirs(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]), mode: 0o755)
            address = try SocketAddress(unixDomainSocketPath: path)
            var st = stat()
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        }
        let fd = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SpoolError("socket", e.description) }
        var one: Int32 = 1
        if case .inet = e.location, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            let err = SpoolError("setsockopt", e.description)
            close(fd)
            throw err
        }
        let bound = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        if bound != 0 || Glibc.listen(fd, backlog) != 0 {
            let err = SpoolError(bound != 0 ? "bind" : "listen", e.description)
            close(fd)
            throw err
        }
        return fd
    }

    /// A listening socket someone else bound, as a channel with its accept queue kept. NIO
    /// calls `listen(fd, 128)` on an adopted socket before any option is applied, which
    /// shrank systemd's `Backlog=512` (and `posternctl run`'s 1024) to 128: a burst of
    /// connections then overflowed the queue, and clients whose handshake the kernel had
    /// finished with a SYN cookie waited for a greeting that never came. The queue length is
    /// put back as it was (TCP reports it; a unix socket does not, so it gets the bootstrap's
    /// `.backlog`).
    package static func adopt(_ fd: Int32, bootstrap: ServerBootstrap) async throws -> any Channel {
        let passed = backlog(of: fd)
        let channel = try await bootstrap.withBoundSocket(fd).get()
        var wanted = passed ?? 0
        if passed == nil { wanted = try await channel.getOption(.backlog).get() }
        if Glibc.listen(fd, wanted) != 0 {
            let err = errno
            try? await channel.close()
            throw SpoolError("listen", "fd \(fd)", errno: err)
        }
        return channel
    }

    /// The accept queue length of a listening TCP socket (Linux reports it in `tcpi_sacked`),
    /// or nil when the socket does not say.
    package static func backlog(of fd: Int32) -> Int32? {
        var info = tcp_info()
        var size = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &size) == 0,
              info.tcpi_state == UInt8(TCP_LISTEN) else { return nil }
        return Int32(clamping: info.tcpi_sacked)
    }

    /// Whether a passed socket listens where `e` says: same port and, for a numeric host, the
    /// same address (a host name is not resolved here); same path for a unix socket.
    package static func matches(_ e: Endpoint, _ address: SocketAddress) -> Bool {
        switch (e.location, address) {
        case (.inet(let host, let port), .v4), (.inet(let host, let port), .v6):
            guard address.port == port else { return false }
            guard let wanted = IPAddress(host), let actual = address.ipAddress.flatMap(IPAddress.init) else { return true }
            return wanted == actual
        case (.unix(let path), .unixDomainSocket):
            return address.pathname == path
        default:
            return false
        }
    }

    package static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .unixDomainSocket: return "local:\(address.pathname ?? "?")"
        default: return Endpoint(location: .inet(host: address.ipAddress ?? "?", port: address.port ?? 0)).description
        }
    }
}

/// Turns among the acceptors of one listening socket, one per event loop: exactly one of them
/// asks the kernel for connections at a time (NIO's `autoRead` is off for all); once it has
/// accepted some, the next one in the ring asks. Two that asked at once would both wake for a
/// connection only one can take, and NIO holds a wake-up with nothing to accept for a bug.
/// The turn passes after the accepting, not before the greeting: the client does not wait
/// for the hand-over. An acceptor whose accept failed (EMFILE) keeps its turn and tries
/// again, as NIO's own acceptor does; one that closes passes it on.
package final class AcceptRing: Sendable {
    private struct State {
        var channels: [any Channel] = []
        var holder = 0
    }
    private let state = NIOLockedValueBox(State())

    package init() {}

    /// The first acceptor's turn.
    package func start(_ channels: [any Channel]) {
        state.withLockedValue { $0 = State(channels: channels, holder: 0) }
        channels.first?.read()
    }

    /// `index` had its turn: the next one still open asks for connections.
    package func pass(from index: Int) {
        let next: (any Channel)? = state.withLockedValue { s in
            guard !s.channels.isEmpty, s.holder == index else { return nil }
            for step in 1...s.channels.count {
                let k = (index + step) % s.channels.count
                if s.channels[k].isActive {
                    s.holder = k
                    return s.channels[k]
                }
            }
            return nil   // all closed
        }
        next?.read()
    }
}

/// An acceptor's side of ``AcceptRing``: passes the turn once it has accepted (or closed).
package final class AcceptTurn: ChannelInboundHandler, @unchecked Sendable {   // touched on its channel's loop only
    package typealias InboundIn = any Channel
    private let ring: AcceptRing
    private let index: Int
    private var accepted = false

    package init(ring: AcceptRing, index: Int) {
        self.ring = ring
        self.index = index
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        accepted = true
        context.fireChannelRead(data)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if accepted {
            accepted = false
            ring.pass(from: index)
        }
        context.fireChannelReadComplete()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        ring.pass(from: index)
        context.fireChannelInactive()
    }
}

/// Logs what goes wrong while accepting or setting up a connection, before the session's own
/// handler exists; the listener keeps accepting.
package final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    package typealias InboundIn = any Channel
    package let logger: Logger
    package init(logger: Logger) { self.logger = logger }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.error("connection dropped before its session started: \(error)")
    }
}
