import PosternSMTP
import PosternSpool
import Testing

/// The one place DSN recipients are gathered: who wants a report.
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
            batch.add(route: route, recipient: recipient, status: "5.1.1", diagnostic: "550 5.1.1 unknown", remote: "h")
        }
        #expect(batch.action == .failed)
        #expect(batch.routes == [3, 5])
        #expect(batch.reported.map(\.recipient.address) == ["a@example.com", "c@example.com"])
    }

    @Test(arguments: [(DeliveryReport.Action.delayed, ["a@example.com"]), (.relayed, ["c@example.com"]),
                      (.delivered, ["c@example.com"])])
    func eachKindAsksItsOwnQuestion(action: DeliveryReport.Action, reported: [String]) throws {
        var batch = DeliveryReport.Batch(original: try Self.envelope(sender: "s@example.org"), action: action)
        for k in 0..<3 { batch.add(route: k, recipient: k, status: "4.0.0", diagnostic: "451 later", remote: nil) }
        #expect(batch.reported.map(\.recipient.address) == reported)
    }

    @Test func noReportAboutAReport() throws {
        for action in [DeliveryReport.Action.failed, .delayed, .relayed, .delivered] {
            var batch = DeliveryReport.Batch(original: try Self.envelope(sender: ""), action: action)
            for k in 0..<3 { batch.add(route: k, recipient: k, status: "5.1.1", diagnostic: "550 5.1.1 unknown", remote: "h") }
            #expect(batch.isEmpty)
        }
    }
}
