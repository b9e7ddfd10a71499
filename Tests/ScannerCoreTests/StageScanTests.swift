import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
@testable import ScannerCore
import Testing

/// scannerd's decisions for one message (DESIGN.md §5): reply codes, route states and the
/// verdict, from injected findings.
@Suite struct StageScanTests {
    typealias F = StageScanFixture
    static let beforeQueue = "[Scanner]\nBeforeQueueFilters = clamav\n"
    static let afterQueue = "[Scanner]\nAfterQueueFilters = clamav\n"

    @Test func aVirusIsRefusedBeforeTheQueue() throws {
        let o = try F.scan(Self.beforeQueue, findings: [F.infected])
        #expect(o.codes == [550, 550])
        #expect(o.verdict.routes.map(\.status) == [.dropped, .dropped])
        #expect(o.verdict.action == .reject)
        #expect(o.text == "clamav: infected: Eicar-Test-Signature")
        #expect(!o.retry)
    }

    @Test func returnRejectNoAcceptsAndOwesADSN() throws {
        let o = try F.scan(Self.beforeQueue + "[Receiver]\nReturnReject = no\n", findings: [F.infected])
        #expect(o.codes == [250, 250])
        #expect(o.verdict.routes.map(\.status) == [.blocked, .blocked])
        #expect(o.verdict.reasons == [0: "clamav: infected: Eicar-Test-Signature", 1: "clamav: infected: Eicar-Test-Signature"])
        #expect(o.verdict.action == .reject)
    }

    @Test func skipDSNOnBlockDropsWithoutAReport() throws {
        let o = try F.scan(Self.beforeQueue + "[Receiver]\nReturnReject = no\n[Sender]\nSkipDSNOnBlock = yes\n", findings: [F.infected])
        #expect(o.codes == [250, 250])
        #expect(o.verdict.routes.map(\.status) == [.dropped, .dropped])
        #expect(o.verdict.action == .discard)
    }

    @Test func returnRejectByRulePerRecipient() throws {
        let o = try F.scan(Self.beforeQueue + "[Rules]\nto:abuse@example.com cont ReturnReject = no\n", envelope: F.envelope(.lmtp),
                           findings: [F.infected])
        #expect(o.codes == [550, 250])
        #expect(o.verdict.routes.map(\.status) == [.dropped, .blocked])
    }

    @Test func discardAcceptsAndDropsSilently() throws {
        let o = try F.scan(Self.beforeQueue + "[ClamAV]\nInfectedActions = discard\n", findings: [F.infected])
        #expect(o.codes == [250, 250])
        #expect(o.verdict.routes.map(\.status) == [.dropped, .dropped])
        #expect(o.verdict.reasons.isEmpty)
        #expect(o.verdict.action == .discard)
    }

    @Test func aScannerDownBeforeTheQueueIsTempfail() throws {
        let o = try F.scan(Self.beforeQueue, findings: [F.down])
        #expect(o.codes == [451, 451])
        #expect(o.verdict.action == .tempfail)
        #expect(o.text == "clamav: scanner temporarily unavailable")
    }

    @Test func aScannerDownAfterTheQueueRetries() throws {
        let o = try F.scan(Self.afterQueue, stage: .afterQueue, findings: [F.down])
        #expect(o.retry)
        #expect(o.codes == [250, 250])
    }

    @Test func afterTheQueueLifetimeATempfailIsABlock() throws {
        let lifetime = Double(ConfigDefaults.maxQueueLifetime.components.seconds)
        let o = try F.scan(Self.afterQueue, stage: .afterQueue, findings: [F.down], now: F.arrival + lifetime + 1)
        #expect(!o.retry)
        #expect(o.verdict.routes.map(\.status) == [.blocked, .blocked])
    }

    /// SMTP has one reply for all: a split refusal is accepted and the refused recipient gets
    /// a DSN; LMTP answers each recipient.
    @Test(arguments: [(MailProtocol.smtp, [250, 250], [RecipientStatus.blocked, .pending]),
                      (MailProtocol.lmtp, [550, 250], [RecipientStatus.dropped, .pending])])
    func splitVerdict(mailProtocol: MailProtocol, codes: [Int], statuses: [RecipientStatus]) throws {
        let o = try F.scan(Self.beforeQueue + "[Rules]\nto:abuse@example.com cont clamav/InfectedActions = pass\n",
                           envelope: F.envelope(mailProtocol), findings: [F.infected])
        #expect(o.codes == codes)
        #expect(o.verdict.routes.map(\.status) == statuses)
        #expect(o.verdict.action == .split)
    }

    @Test(arguments: [(MailProtocol.smtp, [451, 451]), (MailProtocol.lmtp, [550, 451])])
    func oneTempfailRetriesTheWholeSMTPTransaction(mailProtocol: MailProtocol, codes: [Int]) throws {
        let o = try F.scan(Self.beforeQueue + "[Rules]\nto:abuse@example.com cont clamav/InfectedActions = tempfail\n",
                           envelope: F.envelope(mailProtocol), findings: [F.infected])
        #expect(o.codes == codes)
    }

    /// Refused for one, discarded for the other: nobody would get it, so SMTP refuses it
    /// rather than bounce to a possibly forged sender.
    @Test func refusedAndDiscardedOnlyStaysRefused() throws {
        let o = try F.scan(Self.beforeQueue + "[Rules]\nto:abuse@example.com cont clamav/InfectedActions = discard\n",
                           findings: [F.infected])
        #expect(o.codes == [550, 250])
        #expect(o.verdict.routes.map(\.status) == [.dropped, .dropped])
        #expect(o.verdict.action == .reject)
    }

    @Test func redirectRoutesTheCopyElsewhere() throws {
        let o = try F.scan(Self.beforeQueue + "[ClamAV]\nInfectedActions = \"pass, redirect(virus@example.net|admin@example.net)\"\n",
                           findings: [F.infected])
        #expect(o.codes == [250, 250])
        #expect(o.verdict.routes.map(\.recipient) == [0, 0, 1, 1])
        #expect(o.verdict.routes.map(\.address) == ["virus@example.net", "admin@example.net", "virus@example.net", "admin@example.net"])
        #expect(o.verdict.routes.allSatisfy { $0.status == .pending })
    }

    @Test func addHeaderGoesToItsRecipientOnly() throws {
        var spam = F.infected
        spam.headers = ["X-Scanned: clamav"]
        let o = try F.scan(Self.beforeQueue + """
            [ClamAV]
            InfectedActions = pass
            [Rules]
            to:abuse@example.com cont clamav/InfectedActions = "pass, add-header(X-Virus: found)"
            """, findings: [spam])
        #expect(o.verdict.recipientHeaders == [1: ["X-Virus: found"]])
        #expect(o.verdict.addHeaders == ["X-Scanned: clamav"])
        #expect(o.verdict.action == .pass)
    }

    @Test func postermsOwnMailIsNotScanned() throws {
        let calls = F.Calls()
        let o = try F.scan(Self.beforeQueue, envelope: F.envelope(receivedWith: "local"), findings: [F.infected], calls: calls)
        #expect(calls.names.isEmpty)
        #expect(o.codes == [250, 250])
        #expect(o.verdict.action == .pass)
    }

    @Test func theStageChoosesThePlugins() throws {
        let text = "[Scanner]\nBeforeQueueFilters = clamav\nAfterQueueFilters = spamassassin\n"
        let calls = F.Calls()
        let before = try F.scan(text, findings: [], calls: calls)
        #expect(before.verdict.afterQueuePending)
        // Never scanned before the queue: both lists, before-queue first.
        _ = try F.scan(text, stage: .afterQueue, findings: [], calls: calls)
        // Scanned before the queue: only the after-queue list for the open recipients.
        _ = try F.scan(text, stage: .afterQueue, previous: before.verdict, findings: [], calls: calls)
        #expect(calls.names == [["clamav"], ["clamav", "spamassassin"], ["spamassassin"]])
    }

    @Test(arguments: [([RecipientStatus.pending], [250], VerdictAction.pass), ([.dropped], [451], .tempfail),
                      ([.dropped, .dropped], [550, 250], .reject), ([.dropped], [250], .discard),
                      ([.blocked], [], .reject), ([.pending, .blocked], [], .split)])
    func summary(statuses: [RecipientStatus], codes: [Int], expected: VerdictAction) {
        #expect(StageScan.summary(statuses, codes: codes) == expected)
    }
}
