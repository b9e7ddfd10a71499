import PosternSMTP
import Testing

/// The one outcome → reply table, and SoftBounce over it.
@Suite struct ReplyTableTests {
    static let table: [(Outcome, String)] = [
        (.queued(id: "K15CB883PTSWDY15Y704"), "250 2.0.0 Ok: queued as K15CB883PTSWDY15Y704"),
        (.contentRejected(reason: "clamav: infected: Eicar"), "550 5.7.1 Message rejected: clamav: infected: Eicar"),
        (.contentRejected(reason: ""), "550 5.7.1 Message rejected"),
        (.contentTempfailed(reason: "content scanner not available"), "451 4.7.1 Try again later: content scanner not available"),
        (.queueWriteError, "451 4.3.0 Error: queue file write error"),
        (.diskFull, "452 4.3.1 Error: insufficient system storage"),
        (.bareNewline, "550 5.5.2 Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)"),
        (.lineTooLong, "550 5.5.2 Error: message has a line longer than 1000 octets"),
        (.tooBig, "552 5.3.4 Error: message file too big"),
        (.mailLoop, "554 5.4.6 Error: too many hops (mail forwarding loop)"),
        (.shuttingDown, "421 4.3.2 mx.test Service shutting down, closing channel"),
        (.timeout, "421 4.4.2 mx.test Error: timeout exceeded"),
        (.tooManyErrors, "421 4.7.0 mx.test Error: too many errors"),
        (.tooManyConnections, "421 4.7.0 mx.test Error: too many connections"),
        (.notProtected(client: "192.0.2.9"), "554 5.7.1 Access denied: 192.0.2.9 is not in ProtectedNetworks"),
        (.clientConnectionLimit(client: "192.0.2.9"), "421 4.7.0 mx.test Error: too many connections from 192.0.2.9"),
        (.clientConnectionRate(client: "192.0.2.9"), "421 4.7.0 mx.test Error: too many connections from 192.0.2.9"),
        (.improperPipelining, "554 5.5.0 Error: SMTP protocol synchronization"),
    ]

    @Test(arguments: table)
    func eachOutcomeHasItsReply(_ outcome: Outcome, _ expected: String) {
        #expect(ReplyTable(hostname: "mx.test").reply(outcome).description == expected)
    }

    /// Postfix's soft_bounce: 5xx becomes 4xx with its enhanced status; 2xx and 4xx stay.
    @Test(arguments: table)
    func softBounceTurnsEveryPermanentReplyTemporary(_ outcome: Outcome, _ expected: String) {
        let r = ReplyTable(hostname: "mx.test", softBounce: true).reply(outcome)
        let hard = ReplyTable(hostname: "mx.test").reply(outcome)
        #expect(!r.isPermanent)
        #expect(r.text == hard.text)
        if hard.isPermanent {
            #expect(r.code == hard.code - 100 && r.status?.klass == 4 && r.status?.subject == hard.status?.subject)
        } else {
            #expect(r == hard)
        }
    }

    @Test func aLongReasonIsCut() {
        let r = ReplyTable(hostname: "h").reply(.contentRejected(reason: String(repeating: "x", count: 2000)))
        #expect(r.bytes.readableBytes < 512)
    }

    /// One SMTP reply for several recipients: a refusal or a retry wins over `queued`.
    @Test func theOneSMTPReply() {
        let q = Outcome.queued(id: "ID")
        #expect(Outcome.smtpReply([q, q]) == q)
        #expect(Outcome.smtpReply([q, .contentRejected(reason: "r")]) == .contentRejected(reason: "r"))
        #expect(Outcome.smtpReply([.contentTempfailed(reason: "t"), q]) == .contentTempfailed(reason: "t"))
        #expect(Outcome.smtpReply([]) == nil)
    }

    /// The three outcomes a scan gives cross the socket by their keyword; nothing else does.
    @Test func scanOutcomesComeBackFromTheirKeywords() {
        for o in [Outcome.queued(id: "ID"), .contentRejected(reason: "r"), .contentTempfailed(reason: "r")] {
            #expect(Outcome.scanned(keyword: Substring(o.keyword), id: "ID", reason: "r") == o)
        }
        for (o, _) in Self.table where ![.queued(id: "ID"), .contentRejected(reason: "r"), .contentTempfailed(reason: "r")].contains(o) {
            if case .queued = o { continue }
            if case .contentRejected = o { continue }
            if case .contentTempfailed = o { continue }
            #expect(Outcome.scanned(keyword: Substring(o.keyword), id: "ID", reason: "r") == nil)
        }
        #expect(Set(Self.table.map(\.0.keyword)).count == 17, "one keyword per outcome")
    }
}
