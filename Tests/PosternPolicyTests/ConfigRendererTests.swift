import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// `posternctl config show`: what it prints reads back to the same configuration.
@Suite struct ConfigRendererTests {
    static let text = """
        ; a comment that is not shown
        [general]
        hostname = filter.example.com   ; trailing comment
        SpoolDir = "/var/spool/with space"
        [Receiver]
        Address = inet:10024@127.0.0.1, lmtp:local:/run/p/lmtp.sock
        Address = inet:10024@[::1]
        ProcessingErrors = "tempfail, add-header(X-Note: a ; b)"
        MaxMessageSize = 12345
        [Sender]
        SecureHash = "s3cret; not a comment"
        RetryIntervals = 90s, 1h30m
        [Attachments]
        BannedNames = "*.exe", "a,b.zip"
        [HeadersFilter]
        Rule = reject Subject ^\\[SPAM\\]
        Rule = "discard X-Bad \\"quoted\\""
        [Rules]
        from:a@x \\
           cont SenderAddress = inet:2525@CLIENT-IP, rule=spam
        [Rule:spam]
        spamassassin/SpamActions = "reject, notify"
        """

    func reparsed(_ rendered: String) throws -> PosternConfig {
        try PosternConfig.parse(rendered, path: "t.conf")
    }

    @Test func withoutAllOnlyWhatTheFileSetsAsWritten() throws {
        let config = try PosternConfig.parse(Self.text, path: "t.conf")
        let shown = ConfigRenderer.render(config, all: false)
        #expect(shown.contains("[General]\nhostname = filter.example.com\nSpoolDir = \"/var/spool/with space\"\n"))
        #expect(shown.contains("Address = inet:10024@127.0.0.1, lmtp:local:/run/p/lmtp.sock\nAddress = inet:10024@[::1]\n"))
        #expect(shown.contains("; SecureHash = (set, hidden: --show-secrets shows it)\n"))
        #expect(!shown.contains("s3cret") && !shown.contains("MaxRecipients") && !shown.contains("comment that"))
        #expect(shown.contains("[Rules]\nfrom:a@x cont SenderAddress = inet:2525@CLIENT-IP, rule=spam\n"))
        let back = try reparsed(ConfigRenderer.render(config, all: false, showSecrets: true))
        #expect(ConfigRenderer.render(back, all: true, showSecrets: true) == ConfigRenderer.render(config, all: true, showSecrets: true))
        #expect(back.sender.secureHash == "s3cret; not a comment")
        #expect(back.receiver.processingErrors == "tempfail, add-header(X-Note: a ; b)")
    }

    @Test func allShowsEveryKeyAndIsAFixedPoint() throws {
        let config = try PosternConfig.parse(Self.text, path: "t.conf")
        let all = ConfigRenderer.render(config, all: true, showSecrets: true)
        for key in ["Hostname", "MaxRecipients = 1000", "ScanTimeout = 5m", "MaxQueueLifetime = 5d", "StoredTime = 30d",
                    "MaxSize = 1g", "[ClamAV]", "InfectedActions = reject", "[Rspamd]", "; SpamThreshold =   (not set)",
                    "MaxMessageSize = 12345", "RetryIntervals = 90s, 90m", "BannedNames = *.exe, \"a,b.zip\"",
                    "Rule = \"discard x-bad \\\"quoted\\\"\"", "Rule = reject subject ^\\[SPAM\\]",
                    "; Receiver =   (not set)", "ProcessingErrors = \"tempfail, add-header(X-Note: a ; b)\"",
                    "Notify = admin"] {
            #expect(all.contains(key), "\(key)")
        }
        let back = try reparsed(all)
        #expect(ConfigRenderer.render(back, all: true, showSecrets: true) == all)
        #expect(back.receiver.address == config.receiver.address)
        #expect(back.general.spoolDir == "/var/spool/with space")
        #expect(back.rules.rules.map(\.text) == config.rules.rules.map(\.text))
    }

    @Test func defaultsReadBackAsDefaults() throws {
        let empty = try PosternConfig.parse("", path: "t.conf")
        let all = ConfigRenderer.render(empty, all: true)
        let back = try reparsed(all)
        #expect(ConfigRenderer.render(back, all: true) == all)
        #expect(ConfigRenderer.render(empty, all: false) == "# What the file sets of t.conf (posternctl config show)\n")
    }

    @Test func theSampleReadsBack() throws {
        let sample = try PosternConfig.load(path: ConfigSampleTests.samplePath)
        for all in [false, true] {
            let back = try PosternConfig.parse(ConfigRenderer.render(sample, all: all, showSecrets: true), path: sample.path)
            #expect(ConfigRenderer.render(back, all: true, showSecrets: true) == ConfigRenderer.render(sample, all: true, showSecrets: true))
        }
    }

    @Test(arguments: [
        ("plain", false, "plain"), ("", false, ""), (" lead", false, "\" lead\""), ("a ;b", false, "\"a ;b\""),
        ("a;b", false, "a;b"), ("#x", false, "\"#x\""), ("say \"hi\"", false, "\"say \\\"hi\\\"\""),
        ("a,b", false, "a,b"), ("a,b", true, "\"a,b\""), ("c:\\d", false, "c:\\d"), ("x\\\" y", false, "\"x\\\\\\\" y\""),
    ])
    func quoting(text: String, listItem: Bool, expected: String) throws {
        #expect(ConfigRenderer.quote(text, listItem: listItem) == expected)
        guard !expected.isEmpty else { return }
        let config = try PosternConfig.parse("[Notifier]\nAdminMail = \(expected)", path: "t")
        if !listItem { #expect(config.notifier.adminMail == text) }
    }
}
