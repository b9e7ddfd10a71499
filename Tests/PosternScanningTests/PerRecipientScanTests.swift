import PosternPolicy
@testable import PosternScanning
import PosternSpool
import Testing

/// The plug-ins' MaxSize and the spam thresholds resolved per recipient: one scan, judged by
/// each recipient's own settings.
@Suite struct PerRecipientScanTests {
    static let envelope = Envelope(id: "T", arrival: 0, mailProtocol: .smtp, clientIP: "192.0.2.1", mailFrom: "a@example.org",
                                   recipients: [Recipient(address: "user@example.com"), Recipient(address: "boss@example.com"),
                                                Recipient(address: "strict@example.com")], size: 300 << 10)

    static func engine(_ rules: String) throws -> ScanEngine {
        ScanEngine(config: try PosternConfig.parse("""
            [Scanner]
            AfterQueueFilters = spamassassin, clamav
            [SpamAssassin]
            SpamThreshold = 5
            SpamActions = reject
            UnconditionalSpamActions = discard
            [Rules]
            \(rules)
            """, path: "t.conf"))
    }

    /// spamd said 7.2 (its own required_score 5): spam for the section's threshold.
    static let spam = SpamAssassinPlugin(addresses: [], maxSize: 1, spamThreshold: 5, unconditionalThreshold: nil, user: nil)
        .finding(for: .init(score: 7.2, required: 5, symbols: ["BAYES_99"]))

    @Test func spamThresholdsPerRecipient() throws {
        let e = try Self.engine("""
            to:boss@example.com cont spamassassin/SpamThreshold = 10
            to:strict@example.com cont spamassassin/SpamThreshold = 3, spamassassin/UnconditionalSpamThreshold = 7
            """)
        let d = (0..<3).map { e.decide([Self.spam], filters: ["spamassassin"], envelope: Self.envelope, recipient: $0, headers: nil) }
        #expect(d.map(\.main) == [.reject, .pass, .discard])
        #expect(d.map { $0.findings.map(\.verdict) } == [[.spam], [.clean], [.unconditionalSpam]])
        // Each recipient's header fields say what its own thresholds made of the score.
        #expect(d[0].findings[0].headers.first == "X-Spam-Status: Yes, score=7.2 required=5.0 tests=BAYES_99")
        #expect(d[1].findings[0].headers.first == "X-Spam-Status: No, score=7.2 required=10.0 tests=BAYES_99")
        #expect(!d[1].findings[0].headers.contains("X-Spam-Flag: YES"))
        #expect(d[2].findings[0].detail == "unconditional-spam: score 7.2, required 3.0, unconditional 7.0")
    }

    @Test func maxSizePerRecipient() throws {
        let e = try Self.engine("""
            to:boss@example.com cont spamassassin/MaxSize = 1m
            to:strict@example.com cont clamav/MaxSize = 100k
            """)
        // The section's 500k would scan the 300k message; the rules raise it for boss (nothing
        // to send: the section's limit already fits) and lower clamav's for strict.
        let lists = Array(repeating: ["spamassassin", "clamav"], count: 3)
        #expect(e.sizeLimits(for: Self.envelope, recipients: [0, 1, 2], lists: lists, headers: nil) == ["spamassassin": 1 << 20])
        #expect(e.sizeLimits(for: Self.envelope, recipients: [0, 2], lists: Array(lists.prefix(2)), headers: nil) == [:])
        let infected = Finding(plugin: "clamav", verdict: .infected, names: ["Eicar"], detail: "infected: Eicar")
        let d = (0..<3).map { e.decide([Self.spam, infected], filters: ["clamav"], envelope: Self.envelope, recipient: $0, headers: nil) }
        #expect(d.map(\.main) == [.reject, .reject, .pass])
        #expect(d[2].findings.map(\.verdict) == [.skipped])
        #expect(d[2].findings[0].headers == ["X-Postern-Skipped: ClamAV; message size 307200 > MaxSize 102400"])
    }

    /// A plug-in runs once for the largest limit its recipients have, and skips without
    /// connecting to anything past it.
    @Test func theLargestLimitDecidesWhetherThePluginRuns() {
        let section = PluginCatalog.defaults("clamav")   // MaxSize 25m, no clamd here
        var request = ScanRequest(queueID: "T", message: Array(repeating: 0x61, count: 2048))
        request.sizeLimits = ["clamav": 1024]
        let skipped = ScanEngine.runOne(section, request, deadline: .now + .seconds(1))
        #expect(skipped.verdict == .skipped && skipped.detail == "skipped: message larger than MaxSize (1024 bytes)")
    }
}
