import PosternSMTP
import PosternSpool
import Testing

/// The one place DSN failures are gathered: who wants a report.
@Suite struct DeliveryReportBatchTests {
    static func envelope(sender: String) throws -> Envelope {
        Envelope(id: "B", arrival: 0, mailFrom: sender, recipients: [
            Recipient(address: "a@example.com"),
            Recipient(address: "b@example.com", parameters: try MailParameters.parse("NOTIFY=NEVER")),
            Recipient(address: "c@example.com", parameters: try MailParameters.parse("NOTIFY=SUCCESS,FAILURE")),
        ])
    }

    @Test func notifyDecidesWhoIsReported() throws {
        var batch = DeliveryReport.Batch(original: try Self.envelope(sender: "s@example.org"))
        for (route, recipient) in [(3, 0), (4, 1), (5, 2)] {
            batch.add(route: route, recipient: recipient, status: "5.1.1", diagnostic: "550 5.1.1 unknown", remote: "inet:25@h")
        }
        #expect(batch.routes == [3, 5])
        #expect(batch.failures.map(\.recipient.address) == ["a@example.com", "c@example.com"])
    }

    @Test func noReportAboutAReport() throws {
        var batch = DeliveryReport.Batch(original: try Self.envelope(sender: ""))
        batch.add(route: 0, recipient: 0, status: "5.1.1", diagnostic: "550 5.1.1 unknown", remote: "inet:25@h")
        #expect(batch.isEmpty)
    }
}
