import PosternPolicy
import PosternSMTP
import PosternSpool
import Testing

/// End of data per recipient: the one SMTP reply rule and the rules' decisions, shared by
/// scannerd and receiverd.
@Suite struct RecipientFateTests {
    typealias F = RecipientFate

    @Test(arguments: [
        // all alike: as they are
        ([F.deliver, .deliver], true, [F.deliver, .deliver]),
        ([.deliver, .discard, .report], true, [.deliver, .discard, .report]),
        ([.refuse, .refuse], true, [.refuse, .refuse]),
        ([.retry, .retry], false, [.retry, .retry]),
        // any 451: 451 for all
        ([.deliver, .retry], true, [.retry, .retry]),
        ([.refuse, .retry, .deliver], true, [.retry, .retry, .retry]),
        // 550 beside a delivery: 250, the refused reported by DSN
        ([.deliver, .refuse], true, [.deliver, .report]),
        ([.refuse, .discard, .deliver], true, [.report, .discard, .deliver]),
        // 550 beside discards and reports only: refused, no report; the discards stay
        ([.refuse, .discard], true, [.refuse, .discard]),
        ([.refuse, .report], true, [.refuse, .refuse]),
        ([.report, .discard, .refuse], true, [.refuse, .discard, .refuse]),
        // nothing reportable (no verdict): any difference is a 451, a report a refusal
        ([.deliver, .refuse], false, [.retry, .retry]),
        ([.refuse, .discard], false, [.retry, .retry]),
        ([.report, .report], false, [.refuse, .refuse]),
        ([.deliver, .discard], false, [.deliver, .discard]),
    ])
    func oneReplyForSMTP(_ fates: [F], _ reportable: Bool, _ expected: [F]) {
        let ruled = F.oneReply(fates, reportable: reportable)
        #expect(ruled == expected)
        if ruled.contains(where: { !$0.isAccepted }) {
            #expect(!ruled.contains(.deliver) && !ruled.contains(.report), "refused or retried: nobody gets it, no DSN")
        }
        #expect(F.oneReply(ruled, reportable: reportable) == ruled, "the rule applied twice changes nothing")
    }

    @Test func outcomesOfFates() {
        #expect(F.deliver.outcome(id: "ID", reason: "x") == .queued(id: "ID"))
        #expect(F.report.outcome(id: "ID", reason: "x") == .queued(id: "ID"))
        #expect(F.discard.outcome(id: "ID", reason: "x") == .queued(id: "ID"))
        #expect(F.refuse.outcome(id: "ID", reason: "x") == .contentRejected(reason: "x"))
        #expect(F.retry.outcome(id: "ID", reason: "x") == .contentTempfailed(reason: "x"))
    }

    static func envelope(_ rcpts: String...) -> Envelope {
        Envelope(id: "ID", arrival: 0, clientIP: "192.0.2.1", mailFrom: "a@example.com", recipients: rcpts.map { Recipient(address: $0) })
    }

    /// ReturnReject per recipient by rule; ProcessingErrors per recipient by rule.
    @Test func rulesDecidePerRecipient() throws {
        let config = try PosternConfig.parse("""
            [Receiver]
            ProcessingErrors = tempfail
            [Rules]
            to:quiet@example.org cont ReturnReject = no
            to:strict@example.org cont ProcessingErrors = reject
            to:open@example.org cont ProcessingErrors = pass
            """, path: "t")
        let r = RouteResolver(config: config)
        let e = Self.envelope("quiet@example.org", "loud@example.org", "strict@example.org", "open@example.org")
        #expect(r.fate(of: .reject, for: e, recipient: 0, headers: nil) == .report)
        #expect(r.fate(of: .reject, for: e, recipient: 1, headers: nil) == .refuse)
        #expect(r.fate(of: .discard, for: e, recipient: 1, headers: nil) == .discard)
        #expect(r.fate(of: .continue, for: e, recipient: 1, headers: nil) == .deliver)
        #expect(r.fate(of: .tempfail, for: e, recipient: 1, headers: nil) == .retry)
        #expect(r.processingErrors(for: e, recipient: 1).main == .tempfail)
        #expect(r.processingErrors(for: e, recipient: 2).main == .reject)
        #expect(r.unscannedFates(for: Self.envelope("strict@example.org")) == [.refuse])
        #expect(r.unscannedFates(for: Self.envelope("open@example.org")) == [.deliver])
        // A split is a 451 for all, over LMTP too: without a verdict nothing can be reported,
        // and a later scan of the queued file would deliver to the refused recipient.
        #expect(r.unscannedFates(for: Self.envelope("open@example.org", "strict@example.org")) == [.retry, .retry])
        #expect(r.unscannedFates(for: Self.envelope("open@example.org", "quiet@example.org")) == [.retry, .retry])
    }

    /// ReturnReject = no means a DSN: without a verdict none can be sent, so it is a refusal.
    @Test func withoutAVerdictAReportIsARefusal() throws {
        let config = try PosternConfig.parse("[Receiver]\nProcessingErrors = reject\nReturnReject = no", path: "t")
        let r = RouteResolver(config: config)
        #expect(r.unscannedFates(for: Self.envelope("a@example.org")) == [.refuse])
        #expect(r.unscannedFates(for: Self.envelope("a@example.org", "b@example.org")) == [.refuse, .refuse])
    }
}
