import Dispatch
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSpool
import PosternTestSupport
import Testing

@Suite struct WakeupLinkTests {
    /// A peer daemon's IPC socket that records the messages it is sent.
    final class Peer: Sendable {
        let received = NIOLockedValueBox<[IPCMessage]>([])
        let connections = NIOLockedValueBox<[any Channel]>([])
        let channel: any Channel

        init(path: String) async throws {
            let received = self.received
            let connections = self.connections
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { ch in
                    connections.withLockedValue { $0.append(ch) }
                    return ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(IPCServerHandler { m in received.withLockedValue { $0.append(m) } })
                    }
                }
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }

        /// The daemon stops: its socket and every connection to it close.
        func stop() async throws {
            try await channel.close()
            for c in connections.withLockedValue({ $0 }) { try? await c.close() }
        }

        /// Waits (up to `seconds`) until `count` messages have come.
        func messages(_ count: Int, seconds: Int = 10) async throws -> [IPCMessage] {
            for _ in 0..<(seconds * 100) {
                let got = received.withLockedValue { $0 }
                if got.count >= count { return got }
                try await Task.sleep(for: .milliseconds(10))
            }
            return received.withLockedValue { $0 }
        }
    }

    /// A link to `peer.sock` in `spool`'s directory, on the singleton event loops.
    static func link(in spool: borrowing TempSpool) -> (WakeupLink, String) {
        let path = spool.layout.root + "/peer.sock"
        return (WakeupLink(endpoint: Endpoint(location: .unix(path: path)), group: MultiThreadedEventLoopGroup.singleton,
                           logger: Logger(label: "test")), path)
    }

    /// Wake-ups sent at once from many threads (a group commit's batch completing) share
    /// writes, and every one of them arrives: none waits for a later send to be flushed,
    /// also after the peer restarted and the link connected again.
    @Test func everyWakeUpArrivesAcrossAPeerRestart() async throws {
        let spool = try TempSpool()
        let (link, path) = Self.link(in: spool)
        defer { link.close() }
        var peer = try await Peer(path: path)
        let ids = (0..<200).map { _ in QueueID.make() }
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            for id in ids[(k * 50)..<(k * 50 + 50)] { link.send(.scan(id: id)) }
        }
        let first = try await peer.messages(200)
        #expect(Set(first) == Set(ids.map { IPCMessage.scan(id: $0) }) && first.count == 200)
        // A burst inside one turn of an event loop, as the commit thread's results come.
        try await peer.stop()
        peer = try await Peer(path: path)
        for _ in 0..<50 {   // once the old connection's end is noticed, the next send reconnects
            link.send(.deliver(id: QueueID.make()))
            if try await peer.messages(1, seconds: 1).count >= 1 { break }
        }
        try #require(!peer.received.withLockedValue { $0 }.isEmpty, "the link connects again")
        let before = peer.received.withLockedValue { $0.count }
        try await MultiThreadedEventLoopGroup.singleton.next().submit {
            for id in ids { link.send(.deliver(id: id)) }
        }.get()
        let second = try await peer.messages(before + 200)
        #expect(Array(second.dropFirst(before)) == ids.map { IPCMessage.deliver(id: $0) })
    }

    /// A peer that restarts closes its connections: the link forgets them when they close, so
    /// the first wake-up after the restart arrives instead of dying on the old connection.
    @Test func theFirstWakeUpAfterAPeerRestartArrives() async throws {
        let spool = try TempSpool()
        let (link, path) = Self.link(in: spool)
        defer { link.close() }
        var peer = try await Peer(path: path)
        link.send(.scan(id: QueueID.make()))
        #expect(try await peer.messages(1).count == 1)
        #expect(link.connections == 1)
        try await peer.stop()
        for _ in 0..<500 where link.connections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        try #require(link.connections == 0, "the closed connection is forgotten")
        peer = try await Peer(path: path)
        let id = QueueID.make()
        link.send(.deliver(id: id))
        #expect(try await peer.messages(1) == [.deliver(id: id)])
        try await peer.stop()
    }
}
