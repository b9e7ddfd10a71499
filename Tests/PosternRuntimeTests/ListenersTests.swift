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
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(rc == 0)
        for _ in 0..<100 where !log.lines.withLockedValue({ $0.contains { $0.contains("connection dropped before its session started") } }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(log.lines.withLockedValue { $0.contains { $0.hasPrefix("error: connection dropped before its session started") } },
                "\(log.lines.withLockedValue { $0 })")
    }

    /// Each bootstrap gets a channel on a copy of the one socket, and the connections one of
    /// them accepts stay on its event loop: no hand-over between threads before a session.
    @Test func everyBootstrapAcceptsOnItsOwnLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        let loops = Array(group.makeIterator())
        let accepted = NIOLockedValueBox<[Int: Int]>([:])
        let strays = NIOLockedValueBox(0)
        let bootstraps = loops.enumerated().map { i, loop in
            ServerBootstrap(group: loop).childChannelInitializer { ch in
                accepted.withLockedValue { $0[i, default: 0] += 1 }
                if !ch.eventLoop.inEventLoop || ch.eventLoop !== loop { strays.withLockedValue { $0 += 1 } }
                return ch.eventLoop.makeSucceededVoidFuture()
            }
        }
        let channels = try await Listeners.open(names: ["test"], endpoints: [Endpoint(location: .inet(host: "127.0.0.1", port: 0))],
                                                setting: "test", bootstraps: bootstraps, logger: CapturedLog().logger)
        defer { for c in channels { c.close(promise: nil) } }
        #expect(channels.count == 2)
        #expect(channels[0].eventLoop === loops[0] && channels[1].eventLoop === loops[1])
        let port = try #require(channels[0].localAddress?.port)
        #expect(channels[1].localAddress?.port == port)
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<40 {
            clients.append(try #require(Self.connect(port: port)))
        }
        for _ in 0..<250 where accepted.withLockedValue({ $0.values.reduce(0, +) }) < 40 {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(accepted.withLockedValue { $0.values.reduce(0, +) } == 40)
        #expect(strays.withLockedValue { $0 } == 0)
    }

    /// A socket Postern binds on a unix path replaces a socket left there, never a file.
    @Test func aUnixListenerReplacesAStaleSocketButNotAFile() throws {
        let dir = ConfigTestDirectory()
        let path = dir.path + "/run/lmtp.sock"
        defer { unlink(path); rmdir(dir.path + "/run"); dir.remove() }
        let endpoint = Endpoint(location: .unix(path: path))
        let first = try endpoint.listen()
        close(first)   // the socket file stays, as after a daemon that was killed
        let second = try endpoint.listen()
        defer { close(second) }
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK && st.st_mode & 0o777 == 0o660)
        let file = dir.write("postern.conf", "[General]\n")
        #expect { try Endpoint(location: .unix(path: file)).listen() } throws: { ($0 as? SpoolError)?.description == "bind \(file): File exists" }
        #expect(try TextFile.read(file) == "[General]\n")
    }

    private static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { close(fd); return nil }
        return fd
    }
}
