import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Rules may set only what some daemon resolves per recipient.
@Suite struct ConfigParameterTests {
    func errors(_ text: String) -> [String] {
        do {
            _ = try PosternConfig.parse(text, path: "t.conf")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    /// Each of these used to be refused as "not resolved per recipient" and is resolved now
    /// (issue 10); each has its resolution tested in `PerRecipientParameterTests`.
    @Test(arguments: [
        ("true cont ScanTimeout = 2m", "ScanTimeout", ParameterValue.duration(.seconds(120))),
        ("true cont AdminMail = a@b", "AdminMail", .text("a@b")),
        ("from:x cont FilterMail = a@b", "FilterMail", .text("a@b")),
        ("true cont spamassassin/SpamThreshold = 5", "spamassassin/SpamThreshold", .number(5)),
        ("true cont rspamd/unconditionalSpamThreshold = 12.5", "rspamd/UnconditionalSpamThreshold", .number(12.5)),
        ("true cont ReturnReject = no, clamav/MaxSize = 1m", "clamav/MaxSize", .size(1 << 20)),
        ("true cont Notify = \"sender, admin, sender\"", "Notify", .list(["sender", "admin"])),
    ])
    func perRecipientSettingsAreAccepted(rule: String, name: String, value: ParameterValue) throws {
        let config = try PosternConfig.parse(NotificationTemplateTests.shipped + "[Rules]\n" + rule, path: "t.conf")
        let setting = try #require(config.rules.rules[0].settings.last)
        #expect(setting.name == name)
        #expect(setting.typed == value)
    }

    @Test(arguments: [
        ("true cont clamav/SpamActions = reject",
         "t.conf:2:11: 'clamav/SpamActions' is not resolved per recipient: set SpamActions in [ClamAV]; rules can set clamav/InfectedActions, clamav/MaxSize for this plug-in"),
        ("true cont clamav/SpamThreshold = 5",
         "t.conf:2:11: 'clamav/SpamThreshold' is not resolved per recipient: set SpamThreshold in [ClamAV]; rules can set clamav/InfectedActions, clamav/MaxSize for this plug-in"),
        ("true cont spamassassin/Timeout = 5s",
         "t.conf:2:11: 'spamassassin/Timeout' is not resolved per recipient: set Timeout in [SpamAssassin]; rules can set spamassassin/SpamActions, spamassassin/UnconditionalSpamActions, spamassassin/MaxSize, spamassassin/SpamThreshold, spamassassin/UnconditionalSpamThreshold for this plug-in"),
        ("true cont milter/RejectActions = reject",
         "t.conf:2:11: unknown plug-in 'milter' in 'milter/RejectActions': expected one of clamav, spamassassin, rspamd, headersfilter, attachments"),
        ("true cont ScanTimeout = soon", "t.conf:2:25: ScanTimeout: invalid value 'soon': expected a time such as 30s, 5m, 2h, 1d or 500ms"),
        ("true cont AdminMail = \"a b@c\"", "t.conf:2:25: AdminMail: invalid address 'a b@c': expected one address such as postmaster@example.org"),
        ("true cont clamav/MaxSize = 0", "t.conf:2:28: clamav/MaxSize: invalid value '0': expected a size such as 10m, 400k, 1g or a number of bytes"),
        ("true cont rspamd/SpamThreshold = high", "t.conf:2:34: rspamd/SpamThreshold: invalid value 'high': expected a number such as 5 or 12.5"),
        ("true cont Notify = \"admin, boss\"", "t.conf:2:21: Notify: unknown word 'boss': expected some of admin, sender, recipients"),
    ])
    func settingsNothingResolvesAreRefused(rule: String, expected: String) {
        #expect(errors("[Rules]\n" + rule) == [expected])
    }

    @Test func everySettableParameterIsAccepted() throws {
        // 11 core, then per plug-in its action lists and its settings: clamav 1+1, the spam
        // plug-ins 2+3 each, headersfilter 4+1, attachments 2+1.
        #expect(ParameterCatalog.settable.count == 11 + 2 + 5 + 5 + 5 + 3)
        for name in ParameterCatalog.settable {
            let value = name == "SenderAddress" ? "inet:25@[::1]" : name == "SenderTLS" ? "verify" : name.hasSuffix("Filters") ? "clamav"
                : name.hasSuffix("Actions") || name == "ProcessingErrors" ? "pass" : name.hasSuffix("Mail") ? "a@b"
                : name == "ScanTimeout" ? "1m" : name.hasSuffix("MaxSize") ? "1m" : name.hasSuffix("Threshold") ? "5"
                : name == "Notify" ? "admin" : "yes"
            let config = try PosternConfig.parse("[Rules]\ntrue cont \(name) = \(value)\n[Rule:g]\n\(name) = \(value)", path: "t")
            #expect(config.rules.rules[0].settings.map(\.name) == [name])
        }
        #expect(throws: ConfigErrors.self) { try PosternConfig.parse("[Rule:g]\nTimeout = 1m", path: "t") }
    }

    /// The catalog's verdicts are the ones the plug-ins' sections have actions for.
    @Test func verdictsMatchThePluginSections() {
        for (name, _) in PluginCatalog.displayNames {
            #expect(Set(PluginCatalog.defaults(name).actions.keys) == Set(PluginCatalog.verdicts(of: name)), "\(name)")
        }
    }
}
