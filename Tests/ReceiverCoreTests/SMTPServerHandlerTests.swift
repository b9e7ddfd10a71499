import NIOCore
import PosternSMTP
import PosternSpool
@testable import ReceiverCore
import Testing

/// receiverd's handler on an in-memory channel with a temporary spool: what the client reads
/// and what the spool holds afterwards.
@Suite struct SMTPServerHandlerTests {
    /// MAIL, RCPT and DATA: one RFC 2920 group, sent once EHLO has had its reply.
    static let message = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    static let body = "Subject: test\r\n\r\nbody\r\n.\r\n"
    static let sync = "[Scanner]\nBeforeQueueFilters = HeadersFilter\n"

    static func queuedID(_ text: String) -> String? {
        text.split(separator: "\r\n").first { $0.hasPrefix("250 2.0.0 Ok: queued as ") }.map { String($0.suffix(20)) }
    }

    /// EHLO, and its reply read: commands may be pipelined only behind it.
    static func hello(_ h: HandlerHarness) async throws {
        try await h.send("EHLO c\r\n")
        try await h.read { $0.contains("\r\n250 ") }
    }

    static func send(_ h: HandlerHarness, _ body: String = body) async throws -> String {
        try await hello(h)
        try await h.send(message)
        try await h.read { $0.contains("354 ") }
        try await h.send(body)
        return try await h.read { $0.split(separator: "\r\n").last.map { $0.hasPrefix("250 2.0.0 Ok: q") || $0.first == "4" || $0.first == "5" } ?? false }
    }

    @Test func asynchronousModeQueuesIntoScan() async throws {
        let h = try await HandlerHarness(config: "")
        let id = try #require(Self.queuedID(try await Self.send(h)))
        #expect(try h.files(.scan) == [id] && h.files(.incoming).isEmpty)
        let f = try h.file(id, .scan)
        #expect(f.verdict == nil && f.envelope.recipients.map(\.address) == ["b@example.org"])
        #expect(String(buffer: try f.readMessage()).hasSuffix("Subject: test\r\n\r\nbody\r\n"))
    }

    /// scannerd's verdict left it nothing to do: receiverd writes it into its own file and
    /// commits straight to outgoing/ — one writer, no second scan.
    @Test func aReadyVerdictIsWrittenByReceiverdAndGoesToOutgoing() async throws {
        let verdict = Verdict(scanned: 1795687549.5, routes: [.init(recipient: 0, endpoint: "inet:10025@127.0.0.1")])
        let h = try await HandlerHarness(config: Self.sync) { id in .verdict(outcomes: [.queued(id: id)], verdict: verdict) }
        let id = try #require(Self.queuedID(try await Self.send(h)))
        #expect(try h.files(.outgoing) == [id] && h.files(.scan).isEmpty && h.files(.incoming).isEmpty)
        #expect(try h.file(id, .outgoing).verdict == verdict)
    }

    @Test func aVerdictWithWorkLeftGoesToScan() async throws {
        var pending = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:10025@127.0.0.1")])
        pending.afterQueuePending = true
        let verdict = pending
        let h = try await HandlerHarness(config: Self.sync) { id in .verdict(outcomes: [.queued(id: id)], verdict: verdict) }
        let id = try #require(Self.queuedID(try await Self.send(h)))
        #expect(try h.files(.scan) == [id] && h.files(.outgoing).isEmpty)
        #expect(try h.file(id, .scan).verdict == verdict)
    }

    @Test func aRefusalLeavesNothingInTheSpool() async throws {
        let h = try await HandlerHarness(config: Self.sync) { _ in
            .verdict(outcomes: [.contentRejected(reason: "headersfilter: reject")], verdict: Verdict(scanned: 1, routes: [.init(recipient: 0, status: .dropped, endpoint: "inet:25@h")]))
        }
        let text = try await Self.send(h)
        #expect(text.hasSuffix("550 5.7.1 Message rejected: headersfilter: reject\r\n"))
        for state in [SpoolState.incoming, .scan, .outgoing] { #expect(try h.files(state).isEmpty) }
    }

    /// No verdict (scannerd down or late): ProcessingErrors, and an answer that comes later
    /// is never written anywhere — receiverd alone writes its file.
    @Test func withoutAVerdictProcessingErrorsDecide() async throws {
        let h = try await HandlerHarness(config: Self.sync) { _ in nil }
        #expect(try await Self.send(h).hasSuffix("451 4.7.1 Try again later: content scanner not available\r\n"))
        for state in [SpoolState.incoming, .scan, .outgoing] { #expect(try h.files(state).isEmpty) }

        let pass = try await HandlerHarness(config: Self.sync + "[Receiver]\nProcessingErrors = pass\n") { _ in .unscanned(reason: "internal error") }
        let id = try #require(Self.queuedID(try await Self.send(pass)))
        #expect(try pass.files(.scan) == [id] && pass.file(id, .scan).verdict == nil, "scanned later with both lists")
    }

    @Test func bareLineFeedsAreRefusedAndSoftBounceMakesThem450() async throws {
        let hard = try await HandlerHarness(config: "")
        #expect(try await Self.send(hard, "Subject: x\r\n\nsmuggled\r\n.\r\n").hasSuffix("550 5.5.2 Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)\r\n"))
        let soft = try await HandlerHarness(config: "[Receiver]\nSoftBounce = yes\n")
        #expect(try await Self.send(soft, "Subject: x\r\n\nsmuggled\r\n.\r\n").hasSuffix("450 4.5.2 Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)\r\n"))
        #expect(try soft.files(.incoming).isEmpty && soft.files(.scan).isEmpty)
    }

    @Test func aClientOutsideProtectedNetworksIsRefused() async throws {
        let h = try await HandlerHarness(config: "", client: "192.0.2.7")
        #expect(try await h.readToClose() == "554 5.7.1 Access denied: 192.0.2.7 is not in ProtectedNetworks\r\n")
    }

    /// Pipelined commands behind end of data wait for the commit, then are answered in order.
    @Test func commandsPipelinedBehindTheMessageWaitForItsReply() async throws {
        let h = try await HandlerHarness(config: "")
        try await Self.hello(h)
        try await h.send(Self.message)
        try await h.read { $0.contains("354 ") }
        try await h.send(Self.body + "RSET\r\nQUIT\r\n")
        let text = try await h.readToClose()
        #expect(text.hasSuffix("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as QUEUEID\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"))
    }
}
