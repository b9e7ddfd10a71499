import NIOCore
import PosternSMTP
@testable import SenderCore
import Testing

/// senderd's SMTP/LMTP client against scripted next hops (RFC 5321 §3.3, RFC 2920, RFC 2033).
@Suite struct ClientConnectionTests {
    typealias Peer = ScriptedPeer
    static let body = "Subject: test\r\n\r\n.leading dot\r\nend\r\n"
    static let stuffed = "Subject: test\r\n\r\n..leading dot\r\nend\r\n.\r\n"
    static let two = ["one@example.com", "two@example.com"]

    static func hello(_ verb: String = "EHLO", offers: [String]) -> [Peer.Step] {
        let lines = ["next.test"] + offers
        let reply = lines.enumerated().map { i, l in "250\(i == lines.count - 1 ? " " : "-")\(l)\r\n" }.joined()
        return [.says("220 next.test ESMTP\r\n"), .expects("\(verb) postern.test\r\n"), .says(reply)]
    }

    @Test func pipelinedSMTPSendsTheEnvelopeInOneWrite() async throws {
        let (result, sentData) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), script: Self.hello(offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nRCPT TO:<two@example.com>\r\nDATA\r\n"),
            .says("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"),
            .expects(Self.stuffed),
            .says("250 2.0.0 queued as X\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250", "failed 550"])
        #expect(result.broken == nil)
        #expect(sentData)
    }

    @Test func withoutPipeliningEachCommandWaitsForItsReply() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), script: Self.hello(offers: []) + [
            .expects("MAIL FROM:<sender@example.org>\r\n"), .says("250 ok\r\n"),
            .expects("RCPT TO:<one@example.com>\r\n"), .says("450 4.2.0 try later\r\n"),
            .expects("RCPT TO:<two@example.com>\r\n"), .says("250 ok\r\n"),
            .expects("DATA\r\n"), .says("354 go ahead\r\n"),
            .expects(Self.stuffed), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["deferred 450 4.2.0 try later", "delivered 250"])
    }

    /// LMTP answers the data once per accepted recipient, in RCPT order (RFC 2033 §4.2).
    @Test func lmtpGivesEachRecipientItsOwnReply() async throws {
        let three = Self.two + ["three@example.com"]
        let (result, _) = try await Peer.deliver(Peer.job(to: three, body: Self.body), lmtp: true,
                                                 script: Self.hello("LHLO", offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nRCPT TO:<two@example.com>\r\nRCPT TO:<three@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go ahead\r\n"),
            .expects(Self.stuffed),
            .says("250 2.0.0 delivered\r\n452 4.2.2 over quota\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250", "failed 550", "deferred 452 4.2.2 over quota"])
    }

    @Test func aRefusedMailFromEndsThePipelinedTransaction() async throws {
        let (result, sentData) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), script: Self.hello(offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nRCPT TO:<two@example.com>\r\nDATA\r\n"),
            .says("553 5.1.8 bad sender\r\n503 5.5.1 no sender\r\n503 5.5.1 no sender\r\n503 5.5.1 no valid recipients\r\n"),
            .expects("RSET\r\n"), .says("250 ok\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["failed 553", "failed 553"])
        #expect(!sentData)
    }

    @Test func aRefusedMailFromWithoutPipelining() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), script: Self.hello(offers: []) + [
            .expects("MAIL FROM:<sender@example.org>\r\n"), .says("451 4.3.0 busy\r\n"),
            .expects("RSET\r\n"), .says("250 ok\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["deferred 451 4.3.0 busy", "deferred 451 4.3.0 busy"])
    }

    @Test(arguments: [("451 4.3.0 not now\r\n", "deferred 451 4.3.0 not now"), ("554 5.5.1 no\r\n", "failed 554")])
    func dataRefusedWithout354(reply: String, expected: String) async throws {
        let (result, sentData) = try await Peer.deliver(Peer.job(to: ["one@example.com"], body: Self.body), script: Self.hello(offers: []) + [
            .expects("MAIL FROM:<sender@example.org>\r\n"), .says("250 ok\r\n"),
            .expects("RCPT TO:<one@example.com>\r\n"), .says("250 ok\r\n"),
            .expects("DATA\r\n"), .says(reply),
            .expects("RSET\r\n"), .says("250 ok\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == [expected])
        #expect(!sentData)
    }

    /// Every recipient refused, yet DATA got 354 (pipelined): an empty data section, then RSET.
    @Test func a354WithNoRecipientIsAnsweredWithAnEmptyMessage() async throws {
        let (result, sentData) = try await Peer.deliver(Peer.job(to: ["one@example.com"], body: Self.body), script: Self.hello(offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n550 5.1.1 unknown\r\n354 go ahead\r\n"),
            .expects(".\r\n"), .says("554 5.5.1 no valid recipients\r\n"),
            .expects("RSET\r\n"), .says("250 ok\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["failed 550"])
        #expect(!sentData)
    }

    /// An LMTP server that hangs up after the first recipient's reply may have delivered to
    /// it: that outcome stands; only the other is deferred.
    @Test func aConnectionLostMidTransactionKeepsTheAnswersGiven() async throws {
        let (result, sentData) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), lmtp: true,
                                                        script: Self.hello("LHLO", offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nRCPT TO:<two@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects(Self.stuffed),
            .says("250 2.0.0 delivered\r\n"),
            .hangsUp,
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250", "deferred lost connection with next hop: lost connection"])
        #expect(result.broken != nil)
        #expect(sentData)
    }

    @Test func aMessageOverTheNextHopsSizeIsRefusedUnsent() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: Self.two, body: Self.body), script: Self.hello(offers: ["SIZE 10"]))
        #expect(result.outcomes.map(\.summary) == ["failed 552", "failed 552"])
        if case .failed(let r) = result.outcomes[0] { #expect(r.status == EnhancedStatus(5, 3, 4)) }
    }

    @Test func sizeIsRecomputedWhenOffered() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: ["one@example.com"], body: Self.body, mailParameters: try MailParameters.parse(" SIZE=99999")),
                                                 script: Self.hello(offers: ["SIZE 1000", "PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org> SIZE=\(Self.body.utf8.count)\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects(Self.stuffed), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
    }

    /// Postern's added fields (the job's head) go out before the message in the same data,
    /// stuffed as one text: a dot opening the message right after the head is doubled, the
    /// SIZE counts both, and a message long enough to go out as slices of itself (runs of
    /// `DotStuffer.minSlice` and more) arrives whole.
    @Test func theHeadGoesOutBeforeTheMessageAsOneText() async throws {
        let long = String(repeating: "0123456789abcdef", count: DotStuffer.minSlice / 8)
        let body = ".first\r\n\(long)\r\n.\(long)\r\nend"
        var job = Peer.job(to: ["one@example.com"], body: body)
        job.head = ByteBuffer(string: "X-Postern-Guard: v\r\n")
        let size = "X-Postern-Guard: v\r\n".utf8.count + body.utf8.count
        let (result, _) = try await Peer.deliver(job, script: Self.hello(offers: ["SIZE 100000", "PIPELINING"]) + [
            .expects("MAIL FROM:<sender@example.org> SIZE=\(size)\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects("X-Postern-Guard: v\r\n..first\r\n\(long)\r\n..\(long)\r\nend\r\n.\r\n"), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
    }

    @Test func theHeadCountsAgainstTheNextHopsSize() async throws {
        var job = Peer.job(to: ["one@example.com"], body: "x\r\n")
        job.head = ByteBuffer(string: String(repeating: "X-A: b\r\n", count: 4))
        let (result, _) = try await Peer.deliver(job, script: Self.hello(offers: ["SIZE 20"]))
        #expect(result.outcomes.map(\.summary) == ["failed 552"])
    }

    /// RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8 at the next hop: 553 5.6.7, nothing sent.
    @Test func aNonASCIIAddressWithoutSMTPUTF8() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: ["jösé@example.com"], body: Self.body), script: Self.hello(offers: ["PIPELINING"]))
        #expect(result.outcomes.map(\.summary) == ["failed 553"])
        if case .failed(let r) = result.outcomes[0] { #expect(r.status == EnhancedStatus(5, 6, 7)) }
    }

    @Test func aNonASCIIAddressWithSMTPUTF8() async throws {
        let (result, _) = try await Peer.deliver(Peer.job(to: ["jösé@example.com"], body: Self.body), script: Self.hello(offers: ["SMTPUTF8"]) + [
            .expects("MAIL FROM:<sender@example.org>\r\n"), .says("250 ok\r\n"),
            .expects("RCPT TO:<jösé@example.com>\r\n"), .says("250 ok\r\n"),
            .expects("DATA\r\n"), .says("354 go ahead\r\n"),
            .expects(Self.stuffed), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
    }
}
