import NIOCore
import PosternSMTP
import PosternSpool
@testable import SenderCore
import Testing

/// RFC 3461 §5.2: a next hop that offers DSN gets ENVID, RET, NOTIFY and ORCPT as the client
/// gave them and takes over the reports; one that does not gets none of them, and a success
/// is then ours to report (§5.2.2).
@Suite struct ClientConnectionDSNTests {
    typealias Peer = ScriptedPeer
    static let body = "Subject: dsn\r\n\r\nx\r\n"

    static func job() throws -> DeliveryJob {
        let envelope = Envelope(id: "DSNTEST", arrival: 0, mailFrom: "s@example.org",
                                mailParameters: try MailParameters.parse("RET=HDRS ENVID=QQ+2B1 BODY=7BIT"),
                                recipients: [Recipient(address: "a@example.com", parameters: try MailParameters.parse("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bx@example.com")),
                                             Recipient(address: "b@example.com")])
        return DeliveryJob(envelope: envelope, recipients: [0, 1], addresses: ["a@example.com", "b@example.com"],
                           message: .bytes(ByteBuffer(string: body)), finish: { _ in })
    }

    static func nextHopReports(_ o: RecipientOutcome) -> Bool? {
        if case .delivered(_, let reports) = o { return reports }
        return nil
    }

    @Test func passedOnToANextHopWithDSN() async throws {
        let (result, _) = try await Peer.deliver(try Self.job(), script: ClientConnectionTests.hello(offers: ["PIPELINING", "DSN"]) + [
            .expects("MAIL FROM:<s@example.org> RET=HDRS ENVID=QQ+2B1\r\n"
                     + "RCPT TO:<a@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bx@example.com\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
            .expects("Subject: dsn\r\n\r\nx\r\n.\r\n"), .says("250 2.0.0 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250", "delivered 250"])
        #expect(result.outcomes.map(Self.nextHopReports) == [true, true])
    }

    @Test func withheldFromANextHopWithoutDSN() async throws {
        let (result, _) = try await Peer.deliver(try Self.job(), script: ClientConnectionTests.hello(offers: ["PIPELINING"]) + [
            .expects("MAIL FROM:<s@example.org>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"),
            .says("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n"),
            .expects("Subject: dsn\r\n\r\nx\r\n.\r\n"), .says("250 2.0.0 queued\r\n"),
        ])
        #expect(result.outcomes.map(\.summary) == ["delivered 250", "failed 550"])
        #expect(result.outcomes.map(Self.nextHopReports) == [false, nil])
    }
}
