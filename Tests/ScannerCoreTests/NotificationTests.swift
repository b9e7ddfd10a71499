import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
@testable import ScannerCore
import Testing

/// Who is told what: the parties per recipient, one notice per event and address, never an
/// answer to the null sender or to automatic mail; and the per-recipient spam fields.
@Suite struct NotificationTests {
    typealias F = StageScanFixture
    static let templates = "[General]\nHostname = filter.example.com\n[Quarantine]\nReleaseAddress = quarantine-release@filter.example.com\n[Notifier]\nTemplatesDir = \(Self.repository)/config/templates\nAdminMail = postmaster@example.com\n"

    static var repository: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }

    static func notices(_ config: String, envelope: Envelope = F.envelope(), findings: [Finding] = [F.infected],
                        message: String = "Subject: test\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n") throws -> [Notification.Notice] {
        let outcome = try F.scan(config, stage: .afterQueue, envelope: envelope, findings: findings)
        let parsed = try PosternConfig.parse(config, path: "t.conf")
        var n = Notification(original: envelope, headers: HeaderField.parseSection(Array(message.utf8)), config: parsed)
        var k = 0
        n.makeID = { k += 1; return "N\(k)" }
        return n.notices(outcome.decisions.filter { $0.extras.contains(.notify) }, findings: outcome.findings)
    }

    static func text(_ n: Notification.Notice) -> String { String(buffer: n.buffer) }

    @Test func partiesPerRecipient() throws {
        let config = Self.templates + """
            Notify = "admin, sender"
            [Scanner]
            AfterQueueFilters = clamav
            [ClamAV]
            InfectedActions = reject, notify
            [Rules]
            to:abuse@example.com cont Notify = "admin, recipients", AdminMail = security@example.com
            """
        let all = try Self.notices(config)
        #expect(all.map { "\($0.party) \($0.to) \($0.event!)" } == [
            "admin postmaster@example.com virus", "sender sender@example.org virus",
            "admin security@example.com virus", "recipients abuse@example.com virus",
        ])
        #expect(all.allSatisfy { $0.from == "postern@filter.example.com" })
        let toSender = Self.text(all[1])
        #expect(toSender.contains("\r\nIn-Reply-To: <m1@example.org>\r\nReferences: <m1@example.org>\r\nAuto-Submitted: auto-replied\r\n"))
        #expect(toSender.contains("Subject: [Postern] Your message was not delivered: virus found\r\n"))
        #expect(toSender.contains("  To:         user@example.com\r\n"))   // the sender's notice names only its group
        let toRecipient = Self.text(all[3])
        #expect(toRecipient.contains("Auto-Submitted: auto-generated\r\n") && !toRecipient.contains("user@example.com"))
        #expect(toRecipient.contains("a virus (Eicar-Test-Signature)"))
    }

    @Test(arguments: [
        (F.envelope(), "Auto-Submitted: auto-replied\r\n"),
        (F.envelope(), "Precedence: bulk\r\n"),
        (Envelope(id: "NULL", arrival: F.arrival, mailProtocol: .smtp, clientIP: "192.0.2.1", mailFrom: "",
                  recipients: [Recipient(address: "user@example.com")], size: 10), ""),
    ])
    func neverAnAnswerToAutomaticMail(envelope: Envelope, header: String) throws {
        let config = Self.templates + "Notify = \"admin, sender\"\n[Scanner]\nAfterQueueFilters = clamav\n[ClamAV]\nInfectedActions = reject, notify\n"
        let all = try Self.notices(config, envelope: envelope, message: header + "Subject: x\r\n\r\nbody\r\n")
        #expect(all.map(\.party) == [.admin])
    }

    @Test func withoutTemplatesTheAdministratorGetsOneBuiltInNotice() throws {
        let config = "[General]\nHostname = filter.example.com\n[Scanner]\nAfterQueueFilters = clamav\n[ClamAV]\nInfectedActions = reject, notify\n[Notifier]\nAdminMail = pm@example.com\n"
        let all = try Self.notices(config)
        #expect(all.count == 1 && all[0].to == "pm@example.com" && all[0].event == nil)
        #expect(Self.text(all[0]).contains("Subject: Postern: message STAGESCAN reject\r\nMessage-ID: <N1@filter.example.com>\r\n"))
    }

    @Test func quarantinedSpamIsTheQuarantineEventAndAVirusStaysOne() throws {
        let spam = Finding(plugin: "spamassassin", verdict: .spam, score: 9, detail: "spam: score 9.0, required 5.0")
        let config = Self.templates + """
            [Scanner]
            AfterQueueFilters = spamassassin, clamav
            [SpamAssassin]
            SpamActions = reject, quarantine, notify
            [ClamAV]
            InfectedActions = reject, quarantine, notify
            """
        #expect(try Self.notices(config, findings: [spam]).map(\.event) == [.quarantine])
        #expect(try Self.notices(config, findings: [F.infected]).map(\.event) == [.virus])
    }

    @Test func nonASCIISubjectIsEncodedInTheHeaderAndPlainInTheBody() throws {
        let spam = Finding(plugin: "spamassassin", verdict: .spam, score: 9, detail: "spam: score 9.0, required 5.0")
        let config = Self.templates + """
            Notify = recipients
            [Scanner]
            AfterQueueFilters = spamassassin
            [SpamAssassin]
            SpamActions = reject, quarantine, notify
            """
        let all = try Self.notices(config, findings: [spam], message: "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n")
        let text = Self.text(all[0])
        #expect(text.contains("  Subject:    Grüße\r\n"))
        let head = String(text.split(separator: "\r\n\r\n", maxSplits: 1)[0])
        #expect(!head.utf8.contains { $0 >= 0x80 })
        let subject = head.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
        #expect(subject.map(EncodedWord.decode) == "[Postern] Quarantined for you: Grüße")
    }

    /// One recipient's spam thresholds give its copy its own X-Spam fields; the others keep
    /// the message's.
    @Test func spamFieldsPerRecipient() throws {
        let spam = SpamAssassinPlugin(addresses: [], maxSize: 1, spamThreshold: 5, unconditionalThreshold: nil, user: nil)
            .finding(for: .init(score: 7.2, required: 5, symbols: ["BAYES_99"]))
        let o = try F.scan("""
            [Scanner]
            AfterQueueFilters = spamassassin
            [SpamAssassin]
            SpamActions = continue, add-header(X-Tag: spam)
            [Rules]
            to:abuse@example.com cont spamassassin/SpamThreshold = 10
            """, stage: .afterQueue, findings: [spam])
        #expect(o.verdict.addHeaders.isEmpty)
        #expect(o.verdict.recipientHeaders[0] == ["X-Spam-Status: Yes, score=7.2 required=5.0 tests=BAYES_99", "X-Spam-Score: 7.2",
                                                  "X-Spam-Flag: YES", "X-Tag: spam"])
        #expect(o.verdict.recipientHeaders[1] == ["X-Spam-Status: No, score=7.2 required=10.0 tests=BAYES_99", "X-Spam-Score: 7.2"])
        // Without a rule the fields are the message's, as before.
        let same = try F.scan("[Scanner]\nAfterQueueFilters = spamassassin\n", stage: .afterQueue, findings: [spam])
        #expect(same.verdict.addHeaders.count == 3 && same.verdict.recipientHeaders.isEmpty)
    }
}
