import Glibc
import NIOCore
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing
@testable import SenderCore

private typealias Peer = ScriptedPeer

/// A message read from its queue file a chunk at a time goes out exactly as from memory,
/// whatever falls on a chunk boundary.
@Suite struct SpooledDeliveryTests {
    static func spooled(_ spool: borrowing TempSpool, _ message: String) throws -> SpooledMessage {
        let id = try spool.write(message) { id, size in
            Envelope(id: id, arrival: 1, recipients: [Recipient(address: "one@example.com")], size: size)
        }
        return try SpoolFile.readForDelivery(path: spool.layout.path(id, .scan)).1
    }

    static func job(_ body: MessageBody) -> DeliveryJob {
        let envelope = Envelope(id: "CLIENTTEST", arrival: 0, mailFrom: "sender@example.org",
                                recipients: [Recipient(address: "one@example.com")])
        var job = DeliveryJob(envelope: envelope, recipients: [0], addresses: ["one@example.com"], message: body, finish: { _ in })
        job.head = ByteBuffer(string: "X-Postern-Guard: v\r\n")
        return job
    }

    /// Lines that start with a dot right at a chunk's start, a CRLF cut between two chunks,
    /// and no final CRLF: each chunk size gives the same data on the wire.
    @Test(arguments: [1, 2, 3, 5, 8, 64, 1 << 16])
    func chunkBoundariesDoNotChangeTheData(chunk: Int) async throws {
        let spool = try TempSpool()
        let message = "Subject: s\r\n\r\n.a\r\n..\r\nxy\r\n.\r\nlast"
        let m = try Self.spooled(spool, message)
        let (result, sentData) = try await Peer.deliver(Self.job(.spooled(m)), chunk: chunk, script: [
            .says("220 next.test ESMTP\r\n"), .expects("EHLO postern.test\r\n"), .says("250-next.test\r\n250 PIPELINING\r\n"),
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects("X-Postern-Guard: v\r\nSubject: s\r\n\r\n..a\r\n...\r\nxy\r\n..\r\nlast\r\n.\r\n"), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
        #expect(sentData)
    }

    /// The high-bit scan for a next hop without 8BITMIME reads every chunk, not the first.
    @Test func eightBitIsFoundInAnyChunk() throws {
        let spool = try TempSpool()
        let seven = try Self.spooled(spool, "Subject: s\r\n\r\n" + String(repeating: "abcdefgh\r\n", count: 50))
        let eight = try Self.spooled(spool, "Subject: s\r\n\r\n" + String(repeating: "abcdefgh\r\n", count: 50) + "caf\u{e9}\r\n")
        #expect(try !MessageBody.spooled(seven).containsEightBit(chunk: 16))
        #expect(try MessageBody.spooled(eight).containsEightBit(chunk: 16))
        #expect(try MessageBody.spooled(eight).containsEightBit())
        #expect(String(buffer: try MessageBody.spooled(eight).whole()).hasSuffix("caf\u{e9}\r\n"))
    }

    /// Without 8BITMIME at the next hop a 7-bit message is scanned chunk by chunk and sent
    /// unchanged.
    @Test func sevenBitGoesOutUnchangedToAnOldNextHop() async throws {
        let spool = try TempSpool()
        let body = "Subject: s\r\n\r\n" + String(repeating: "abcdefgh\r\n", count: 20)
        let m = try Self.spooled(spool, body)
        let (result, _) = try await Peer.deliver(Self.job(.spooled(m)), chunk: 7, script: [
            .says("220 next.test ESMTP\r\n"), .expects("EHLO postern.test\r\n"), .says("250 next.test\r\n"),
            .expects("MAIL FROM:<sender@example.org>\r\n"), .says("250 ok\r\n"),
            .expects("RCPT TO:<one@example.com>\r\n"), .says("250 ok\r\n"),
            .expects("DATA\r\n"), .says("354 go ahead\r\n"),
            .expects("X-Postern-Guard: v\r\n" + body + ".\r\n"), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
    }

    /// A message and what DATA must carry for it after the head, and whether it may go out
    /// as its file region (`sendfile`) rather than through the dot-stuffer.
    struct Case: Sendable, CustomTestStringConvertible {
        var message: String
        var wire: String
        var region: Bool
        var testDescription: String { message.debugDescription }
    }

    static let cases: [Case] = [
        // Dots inside lines and at their ends are not at a line's start.
        Case(message: "Subject: s\r\n\r\nend. of a line.\r\n x.y\r\n", wire: "Subject: s\r\n\r\nend. of a line.\r\n x.y\r\n.\r\n", region: true),
        // No final CRLF: the terminator adds one; a final lone CR is not a line's end.
        Case(message: "Subject: s\r\n\r\nlast", wire: "Subject: s\r\n\r\nlast\r\n.\r\n", region: true),
        Case(message: "Subject: s\r\n\r\nlast\r", wire: "Subject: s\r\n\r\nlast\r\r\n.\r\n", region: true),
        // A dot that starts a line needs another before it: the stuffer's path.
        Case(message: "Subject: s\r\n\r\na\r\n.b\r\n", wire: "Subject: s\r\n\r\na\r\n..b\r\n.\r\n", region: false),
        Case(message: ".Subject: s\r\n\r\nb\r\n", wire: "..Subject: s\r\n\r\nb\r\n.\r\n", region: false),
        // After a bare LF the stuffer adds nothing (only CRLF ends a line), but the check is
        // cautious: such a message is not sent as it is stored.
        Case(message: "Subject: s\r\n\r\na\n.b\r\n", wire: "Subject: s\r\n\r\na\n.b\r\n.\r\n", region: false),
    ]

    /// A spooled message with no line that starts with a dot goes out as its file region,
    /// between the stuffed head and the terminator; any other goes through the dot-stuffer.
    /// Either way the next hop gets the same octets.
    @Test(arguments: cases)
    func unchangedMessagesGoOutAsTheirFileRegion(c: Case) async throws {
        let spool = try TempSpool()
        let m = try Self.spooled(spool, c.message)
        let (result, _, regions) = try await Peer.deliverCountingRegions(Self.job(.spooled(m)), sendfileMinimum: 1, script: [
            .says("220 next.test ESMTP\r\n"), .expects("EHLO postern.test\r\n"), .says("250-next.test\r\n250 PIPELINING\r\n"),
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects("X-Postern-Guard: v\r\n" + c.wire), .says("250 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250"])
        #expect(regions == (c.region ? 1 : 0))
    }

    /// Below `sendfileMinimum` a message takes the copying path (one read, one gathering
    /// write), and a message held in memory always does.
    @Test func shortOrConvertedMessagesAreCopied() async throws {
        let spool = try TempSpool()
        let message = "Subject: s\r\n\r\nbody\r\n"
        let m = try Self.spooled(spool, message)
        let script: [Peer.Step] = [
            .says("220 next.test ESMTP\r\n"), .expects("EHLO postern.test\r\n"), .says("250-next.test\r\n250 PIPELINING\r\n"),
            .expects("MAIL FROM:<sender@example.org>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            .expects("X-Postern-Guard: v\r\n" + message + ".\r\n"), .says("250 queued\r\n"),
        ]
        let short = try await Peer.deliverCountingRegions(Self.job(.spooled(m)), sendfileMinimum: m.count + 1, script: script)
        let inMemory = try await Peer.deliverCountingRegions(Self.job(.bytes(ByteBuffer(string: message))), sendfileMinimum: 1, script: script)
        let atMinimum = try await Peer.deliverCountingRegions(Self.job(.spooled(m)), sendfileMinimum: m.count, script: script)
        #expect([short.regions, inMemory.regions, atMinimum.regions] == [0, 0, 1])
        #expect([short, inMemory, atMinimum].map { $0.result.outcomes.map(\.summary) } == Array(repeating: ["delivered 250"], count: 3))
    }

    /// A queue file cut short inside its message after it was opened is not mapped (a page
    /// past the end would kill senderd with SIGBUS): it takes the copying path, whose read
    /// reports the error.
    @Test func aShortenedFileIsNotMapped() throws {
        let spool = try TempSpool()
        let m = try Self.spooled(spool, "Subject: s\r\n\r\n" + String(repeating: "abcdefgh\r\n", count: 1000))
        #expect(m.tailIfNoLineStartsWithDot() == Array("\r\n".utf8))
        #expect(truncate(m.path, off_t(m.offset + m.count - 5000)) == 0)
        #expect(m.tailIfNoLineStartsWithDot() == nil)
        #expect(throws: SpoolError.self) { try m.readAll() }
    }
}
