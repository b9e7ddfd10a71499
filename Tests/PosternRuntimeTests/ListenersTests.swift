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
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(rc == 0)
        for _ in 0..<100 where !log.lines.withLockedValue({ $0.contains { $0.contains("connection dropped before its session started") } }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(log.lines.withLockedValue { $0.contains { $0.hasPrefix("error: connection dropped before its session started") } },
                "\(log.lines.withLockedValue { $0 })")
    }
}
