import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSpool
import PosternTestSupport
import PosternUtil
@testable import ReceiverCore

/// scannerd's stand-in: answers every PRESCAN at once with what `answer` gives for its id.
struct CannedScanner: VerdictSource {
    let answer: @Sendable (String) -> ScannerAnswer?
    func verdict(id: String, timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<ScannerAnswer?> {
        loop.makeSucceededFuture(answer(id))
    }
}

/// One receiverd session on an in-memory channel, over a temporary spool: bytes in, the
/// server's reply lines out, the files in the spool's states to look at. The commit runs on the
/// spool's commit thread, as in receiverd.
final class HandlerHarness {
    let spool: TempSpool
    let channel: NIOAsyncTestingChannel
    var received = ""

    init(config text: String, lmtp: Bool = false, client: String = "127.0.0.1",
         scanner: @escaping @Sendable (String) -> ScannerAnswer? = { _ in nil }) async throws {
        spool = try TempSpool()
        let config = try PosternConfig.parse("[General]\nHostname = filter.e2e.test\n" + text, path: "t.conf")
        let nowhere = Endpoint(location: .unix(path: spool.layout.root + "/no-daemon.sock"))
        let logger = Logger(label: "receiverd-test") { _ in SwiftLogNoOpLogHandler() }
        let ctx = ReceiverContext(
            store: ConfigStore(config), layout: spool.layout, committer: try GroupCommitter(layout: spool.layout),
            scanner: WakeupLink(endpoint: nowhere, group: MultiThreadedEventLoopGroup.singleton, logger: logger),
            sender: WakeupLink(endpoint: nowhere, group: MultiThreadedEventLoopGroup.singleton, logger: logger),
            prescan: CannedScanner(answer: scanner), loopGuard: LoopGuard(key: Array("test-key".utf8)), sessions: SessionRegistry(),
            tls: ServerTLS(nil), metrics: ReceiverMetrics(), logger: logger)
        let channel = NIOAsyncTestingChannel()
        self.channel = channel
        // The handler is made on the channel's loop: it is not Sendable.
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(SMTPServerHandler(ctx: ctx, lmtp: lmtp))
        }
        try await channel.connect(to: SocketAddress(ipAddress: client, port: 40000))
    }


    /// Sends `text` (lines ended by CRLF as written) in one write.
    func send(_ text: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: text))
    }

    /// Reads what the server wrote until `done` holds for all of it (or 10 seconds pass: the
    /// commit runs on another thread).
    @discardableResult
    func read(until done: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            while let b = try await channel.readOutbound(as: ByteBuffer.self) { received += String(buffer: b) }
            if done(received) { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        return received
    }

    /// Reads until the server closed the connection; what it wrote, queue ids masked.
    func readToClose() async throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            while let b = try await channel.readOutbound(as: ByteBuffer.self) { received += String(buffer: b) }
            if !channel.isActive { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        while let b = try await channel.readOutbound(as: ByteBuffer.self) { received += String(buffer: b) }
        return Self.masked(received)
    }

    /// Queue ids (Crockford base-32, 20 characters) as QUEUEID, as the golden files have them.
    static func masked(_ text: String) -> String {
        var out = ""
        var word = ""
        func flush() {
            let isID = word.count == 20 && word.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90 && ![73, 76, 79, 85].contains($0)) }
            out += isID ? "QUEUEID" : word
            word = ""
        }
        for c in text {
            if c.isLetter || c.isNumber { word.append(c) } else { flush(); out.append(c) }
        }
        flush()
        return out
    }

    /// The ids in a spool state.
    func files(_ state: SpoolState) throws -> [String] {
        try SysCall.listDirectory(spool.layout.directory(state)).sorted()
    }

    func file(_ id: String, _ state: SpoolState) throws -> SpoolFile {
        try SpoolFile.read(path: spool.layout.path(id, state))
    }
}
