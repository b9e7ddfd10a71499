import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Findings → per-recipient decisions through the rules (DESIGN.md §4–§5).
@Suite struct ScanEngineTests {
    static let envelope = Envelope(id: "TEST", arrival: 0, mailProtocol: .smtp, clientIP: "192.0.2.1", mailFrom: "a@example.org",
                                   recipients: [Recipient(address: "user@example.com"), Recipient(address: "abuse@example.com")])

    static func engine(_ text: String) throws -> ScanEngine {
        ScanEngine(config: try PosternConfig.parse(text, path: "t.conf"))
    }

    static let infected = Finding(plugin: "clamav", verdict: "infected", names: ["Eicar-Test-Signature"], detail: "infected: Eicar-Test-Signature")
    static let spam = Finding(plugin: "spamassassin", verdict: "spam", score: 7.5, headers: ["X-Spam-Flag: YES"], detail: "spam 7.5/5")
    static let failed = Finding(plugin: "rspamd", verdict: Finding.error, detail: "error: connection refused")

    @Test func sectionDefaultRejectsAVirus() throws {
        let e = try Self.engine("[Scanner]\nAfterQueueFilters = clamav")
        let d = e.decide([Self.infected], filters: ["clamav"], envelope: Self.envelope, recipient: 0, headers: nil)
        #expect(d.main == .reject)
        #expect(d.reasons == ["clamav: infected: Eicar-Test-Signature"])
        #expect(d.steps.map(\.parameter) == ["clamav/InfectedActions"])
        #expect(d.steps.first?.source == "[ClamAV] InfectedActions")
    }

    @Test func aRuleOverridesPerRecipient() throws {
        let e = try Self.engine("""
            [Scanner]
            AfterQueueFilters = clamav
            [ClamAV]
            InfectedActions = reject, quarantine
            [Rules]
            to:abuse@example.com cont clamav/InfectedActions = "pass, add-header(X-Virus: found)"
            """)
        let user = e.decide([Self.infected], filters: ["clamav"], envelope: Self.envelope, recipient: 0, headers: nil)
        let abuse = e.decide([Self.infected], filters: ["clamav"], envelope: Self.envelope, recipient: 1, headers: nil)
        #expect(user.main == .reject && user.extras == [.quarantine])
        #expect(abuse.main == .pass && abuse.extras == [.addHeader(name: "X-Virus", body: "found")])
        #expect(abuse.steps.first?.source == "rule")
    }

    @Test func continueGoesOnAndPassStops() throws {
        let e = try Self.engine("""
            [Scanner]
            AfterQueueFilters = spamassassin, clamav
            [SpamAssassin]
            SpamActions = continue, score(100), add-header(X-Tag: spam)
            """)
        let both = e.decide([Self.infected, Self.spam], filters: ["spamassassin", "clamav"], envelope: Self.envelope, recipient: 0, headers: nil)
        #expect(both.main == .reject)
        #expect(both.extras == [.score(100), .addHeader(name: "X-Tag", body: "spam")])
        #expect(both.score == 107.5)
        let allow = try Self.engine("""
            [Scanner]
            AfterQueueFilters = spamassassin, clamav
            [SpamAssassin]
            SpamActions = pass
            """)
        let passed = allow.decide([Self.infected, Self.spam], filters: ["spamassassin", "clamav"], envelope: Self.envelope, recipient: 0, headers: nil)
        #expect(passed.main == .pass)
        #expect(passed.steps.count == 1)
    }

    @Test func onlyTheRecipientsFiltersCount() throws {
        let e = try Self.engine("[Scanner]\nAfterQueueFilters = clamav")
        let d = e.decide([Self.infected], filters: [], envelope: Self.envelope, recipient: 0, headers: nil)
        #expect(d.main == .pass && d.steps.isEmpty)
    }

    @Test func aFailedPluginIsProcessingErrorsNeverAPass() throws {
        let e = try Self.engine("[Scanner]\nAfterQueueFilters = rspamd")
        let d = e.decide([Self.failed], filters: ["rspamd"], envelope: Self.envelope, recipient: 0, headers: nil)
        #expect(d.main == .tempfail)
        #expect(d.steps.first?.parameter == "ProcessingErrors")
        let r = try Self.engine("[Receiver]\nProcessingErrors = reject, notify\n[Scanner]\nAfterQueueFilters = rspamd")
        #expect(r.decide([Self.failed], filters: ["rspamd"], envelope: Self.envelope, recipient: 0, headers: nil).main == .reject)
    }

    @Test func blockAndScoreTermsSeeTheFindings() throws {
        let e = try Self.engine("""
            [Scanner]
            AfterQueueFilters = clamav, spamassassin
            [Rules]
            block:regex:^Eicar cont clamav/InfectedActions = discard
            score:>=7 cont spamassassin/SpamActions = tempfail
            """)
        #expect(e.decide([Self.infected], filters: ["clamav"], envelope: Self.envelope, recipient: 0, headers: nil).main == .discard)
        #expect(e.decide([Self.spam], filters: ["spamassassin"], envelope: Self.envelope, recipient: 0, headers: nil).main == .tempfail)
    }

    @Test func filterListsPerRecipientByRule() throws {
        let e = try Self.engine("""
            [Scanner]
            BeforeQueueFilters = clamav, spamassassin
            [Rules]
            to:abuse@example.com cont BeforeQueueFilters = clamav
            """)
        #expect(e.filters(.beforeQueue, for: Self.envelope, recipient: 0, headers: nil) == ["clamav", "spamassassin"])
        #expect(e.filters(.beforeQueue, for: Self.envelope, recipient: 1, headers: nil) == ["clamav"])
        #expect(e.config.synchronous)
    }

    @Test func oversizedMessageSkipsAPluginAndSaysSo() throws {
        let e = try Self.engine("[HeadersFilter]\nMaxSize = 10\nRule = reject Subject x")
        let request = ScanRequest(queueID: "TEST", message: Array("Subject: x\r\n\r\nbody\r\n".utf8))
        let findings = e.run(["headersfilter"], on: request, deadline: .now + .seconds(5))
        #expect(findings.map(\.verdict) == [Finding.skipped])
        #expect(findings.first?.headers.first?.hasPrefix("X-Postern-Skipped: HeadersFilter") == true)
    }

    @Test(arguments: [
        ("spam", "spamassassin/SpamActions"),
        ("unconditional-spam", "spamassassin/UnconditionalSpamActions"),
        ("archive-bomb", "spamassassin/ArchiveBombActions"),
    ])
    func verdictParameterNames(verdict: String, parameter: String) {
        #expect(PluginSection.parameter(plugin: "spamassassin", verdict: verdict) == parameter)
    }
}

/// `[HeadersFilter]`: ordered rules, first match wins.
@Suite struct HeadersFilterTests {
    static func scan(_ rules: String, _ message: String) throws -> Finding {
        let config = try PosternConfig.parse("[HeadersFilter]\n" + rules, path: "t.conf")
        return try config.plugins["headersfilter"]!.plugin.scan(ScanRequest(queueID: "T", message: Array(message.utf8)), deadline: .now + .seconds(1))
    }

    @Test func firstMatchWins() throws {
        let rules = "Rule = accept X-Trusted ^yes$\nRule = reject Subject \\[SPAM\\]\n"
        #expect(try Self.scan(rules, "Subject: [SPAM] buy\r\nX-Trusted: yes\r\n\r\n").verdict == "accept")
        let rejected = try Self.scan(rules, "Subject: [spam] buy\r\n\r\n")
        #expect(rejected.verdict == "reject" && rejected.names == ["header:Subject"])
        #expect(try Self.scan(rules, "Subject: hello\r\n\r\nSubject: [SPAM] in the body\r\n").verdict == Finding.clean)
    }

    @Test func foldedFieldsAreUnfolded() throws {
        #expect(try Self.scan("Rule = reject Subject cheap pills", "Subject: cheap\r\n pills\r\n\r\n").verdict == "reject")
    }

    @Test(arguments: [
        ("Rule = bounce Subject x", "t.conf:2:8: unknown keyword 'bounce': expected one of reject, accept, discard, tempfail"),
        ("Rule = reject Subject", "t.conf:2:8: expected KEYWORD HEADER REGEX, e.g. reject Subject ^\\[SPAM\\]"),
        ("Rule = reject Subject a(b", "t.conf:2:23: invalid regular expression 'a(b': "),
    ])
    func badRulesArePointedAt(line: String, expected: String) {
        do {
            _ = try PosternConfig.parse("[HeadersFilter]\n" + line, path: "t.conf")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.errors.count == 1)
            #expect(error.errors.first?.description.hasPrefix(expected) == true, "\(error)")
        }
    }
}

/// Plug-in sections and filter lists: errors point at the place.
@Suite struct PluginConfigTests {
    @Test(arguments: [
        ("[Scanner]\nBeforeQueueFilters = clamav, virustotal", "t.conf:2:30: unknown plug-in 'virustotal' in BeforeQueueFilters"),
        ("[Scanner]\nBeforeQueueFilters = clamav\nAfterQueueFilters = ClamAV", "t.conf:3:21: plug-in 'clamav' is listed in both"),
        ("[ClamAV]\nAddress = inet:3310@a weight=0", "t.conf:2:11: invalid scanner address"),
        ("[ClamAV]\nAddress = lmtp:inet:3310@a", "t.conf:2:11: a scanner address takes no protocol prefix"),
        ("[ClamAV]\nInfectedActions = reject, bogus", "t.conf:2:27: "),
        ("[SpamAssassin]\nSpamThreshold = high", "t.conf:2:17: invalid value 'high' for SpamThreshold"),
        ("[Rspamd]\nSocket = x", "t.conf:2:1: unknown key 'Socket' in [Rspamd]"),
    ])
    func errors(text: String, expected: String) {
        do {
            _ = try PosternConfig.parse(text, path: "t.conf")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.errors.first?.description.hasPrefix(expected) == true, "\(error)")
        }
    }

    @Test func weightedAddresses() throws {
        var reader = SectionReader(try PosternConfig.parse("[ClamAV]\nAddress = inet:3310@10.0.0.1 weight=3, local:/run/clamd.ctl", path: "t").sections["clamav"],
                                   name: "ClamAV", file: "t")
        let addresses = reader.scannerAddresses("Address")
        #expect(addresses == [ScannerAddress(location: .inet(host: "10.0.0.1", port: 3310), weight: 3),
                              ScannerAddress(location: .unix(path: "/run/clamd.ctl"), weight: 1)])
        #expect(reader.errors.isEmpty)
    }

    @Test func defaultsOfAListedPlugin() throws {
        let config = try PosternConfig.parse("[Scanner]\nAfterQueueFilters = clamav, spamassassin", path: "t")
        #expect(config.plugins["clamav"]?.actions["infected"] == ActionList(main: .reject))
        #expect(config.plugins["spamassassin"]?.actions["spam"] == ActionList(main: .continue))
        #expect(config.plugins["spamassassin"]?.actions["unconditional-spam"] == ActionList(main: .reject))
        #expect(config.plugins["spamassassin"]?.plugin.maxSize == 500 << 10)
        #expect(!config.synchronous)
    }
}
