import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
@testable import PosternRuntime
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Lines a test's logger was given.
final class CapturedLog: Sendable {
    let lines = NIOLockedValueBox<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            sink.lines.withLockedValue { $0.append("\(event.level): \(event.message)") }
        }
    }
}

@Suite struct ListenersTests {
    /// A passed socket keeps the accept queue it was given (systemd's `Backlog=`): NIO's
    /// adoption alone cut it to 128, and a burst of 10,000 clients overflowed it.
    @Test func anAdoptedSocketKeepsItsBacklog() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(rc == 0 && listen(fd, 777) == 0)
        #expect(Listeners.backlog(of: fd) == 777)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
        let channel = try await Listeners.adopt(fd, bootstrap: bootstrap)   // closes fd when closed
        defer { channel.close(promise: nil) }
        #expect(Listeners.backlog(of: fd) == 777)
    }

    /// A connection the kernel lets in but NIO cannot set up (here a socket option no kernel
    /// knows; under systemd it was SO_DEBUG, refused to an unprivileged user) is logged.
    @Test func connectionDroppedBeforeItsSessionIsLogged() async throws {
        let log = CapturedLog()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.Types.SocketOption(level: Int(SOL_SOCKET), name: 0x7fff_0000), value: 1)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
        let channels = try await Listeners.open(names: ["test"], endpoints: [Endpoint(location: .inet(host: "127.0.0.1", port: 0))],
                                                setting: "test", bootstrap: bootstrap, logger: log.logger)
        defer { for c in channels { c.close(promise: nil) } }
        let port = try #require(channels.first?.localAddress?.port)
        let fd = Self.connected(to: port)
        defer { close(fd) }
        #expect(fd >= 0)
        for _ in 0..<100 where !log.lines.withLockedValue({ $0.contains { $0.contains("connection dropped before its session started") } }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(log.lines.withLockedValue { $0.contains { $0.hasPrefix("error: connection dropped before its session started") } },
                "\(log.lines.withLockedValue { $0 })")
    }

    /// A socket connected to 127.0.0.1:`port`, or -1.
    static func connected(to port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc == 0 { return fd }
        close(fd)
        return -1
    }

    /// Connects to 127.0.0.1:`port` and closes at once; true when the kernel took the connection.
    static func connectOnce(_ port: Int) -> Bool {
        let fd = connected(to: port)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    /// One acceptor per event loop on the same socket: each connection is served on the loop
    /// that accepted it (no hop to another loop and back before the session starts), they
    /// take turns, and closing one leaves the others listening.
    @Test func everyLoopAcceptsAndKeepsItsConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let served = NIOLockedValueBox<[(acceptor: ObjectIdentifier, session: ObjectIdentifier)]>([])
        // One accept per wake-up: with NIO's default of four, an acceptor may take the next
        // connection in the same wake-up, before it passes the turn (as it should under load).
        let bootstraps = group.makeIterator().map { loop in
            ServerBootstrap(group: loop, childGroup: loop).serverChannelOption(.maxMessagesPerRead, value: 1).childChannelInitializer { channel in
                served.withLockedValue { $0.append((ObjectIdentifier(loop), ObjectIdentifier(channel.eventLoop))) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        }
        let channels = try await Listeners.open(names: ["test"], endpoints: [Endpoint(location: .inet(host: "127.0.0.1", port: 0))],
                                                setting: "test", perLoop: bootstraps, backlog: 64, logger: CapturedLog().logger)
        try #require(channels.count == 2)
        let port = try #require(channels[0].localAddress?.port)
        #expect(channels[1].localAddress?.port == port)
        #expect(Set(channels.map { ObjectIdentifier($0.eventLoop) }).count == 2)
        func connect(_ n: Int) async throws {
            let before = served.withLockedValue { $0.count }
            for _ in 0..<n { #expect(Self.connectOnce(port)) }
            for _ in 0..<1000 where served.withLockedValue({ $0.count }) < before + n { try await Task.sleep(for: .milliseconds(20)) }
            #expect(served.withLockedValue { $0.count } == before + n)
        }
        try await connect(20)
        // One at a time, the acceptors take turns.
        for _ in 0..<6 { try await connect(1) }
        let turns = served.withLockedValue { $0.suffix(6).map(\.acceptor) }
        #expect(zip(turns, turns.dropFirst()).allSatisfy { $0 != $1 }, "\(turns)")
        try await channels[0].close()
        try await connect(5)   // the second acceptor alone, on the same socket
        #expect(served.withLockedValue { $0.allSatisfy { $0.acceptor == $0.session } })
        #expect(served.withLockedValue { $0.suffix(5).allSatisfy { $0.acceptor == ObjectIdentifier(channels[1].eventLoop) } })
        try await channels[1].close()
        try await group.shutdownGracefully()
    }

    /// A passed socket taken by several acceptors keeps its accept queue, and so does a socket
    /// bound here (the backlog asked for).
    @Test func sharedSocketsKeepTheirBacklog() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let bootstraps = group.makeIterator().map { loop in
            ServerBootstrap(group: loop, childGroup: loop).childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
        }
        let fd = try Listeners.bind(Endpoint(location: .inet(host: "127.0.0.1", port: 0)), backlog: 777)
        #expect(Listeners.backlog(of: fd) == 777)
        let channels = try await Listeners.adopt(fd, bootstraps: bootstraps)
        #expect(channels.count == 2 && Listeners.backlog(of: fd) == 777)
        for c in channels { try await c.close() }
        try await group.shutdownGracefully()
    }

    /// A unix socket bound here replaces a socket file an earlier run left, never another file.
    @Test func aUnixSocketReplacesOnlyAStaleSocketFile() throws {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        let path = dir.path + "/lmtp.sock"
        let first = try Listeners.bind(Endpoint(location: .unix(path: path)), backlog: 8)
        close(first)   // the file stays, nothing listens: stale
        let second = try Listeners.bind(Endpoint(location: .unix(path: path)), backlog: 8)
        close(second)
        unlink(path)
        dir.write("lmtp.sock", "not a socket\n")
        #expect(throws: SpoolError.self) { try Listeners.bind(Endpoint(location: .unix(path: path)), backlog: 8) }
        var st = stat()
        #expect(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 13)
    }
}
