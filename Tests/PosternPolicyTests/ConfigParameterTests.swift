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

    static let resolvable = "rules can set SenderAddress, SenderTLS, ProcessingErrors, ReturnReject, SkipDSNOnBlock, BeforeQueueFilters, AfterQueueFilters and the plug-ins' action lists, e.g. clamav/InfectedActions"

    /// Each of these used to be accepted, shown by `rules test`, and then ignored.
    @Test(arguments: [
        ("true cont ScanTimeout = 2m", "t.conf:2:11: 'ScanTimeout' is not resolved per recipient: set it in [Scanner] ScanTimeout (\(resolvable))"),
        ("true cont AdminMail = a@b", "t.conf:2:11: 'AdminMail' is not resolved per recipient: set it in [Notifier] AdminMail (\(resolvable))"),
        ("from:x cont FilterMail = a@b", "t.conf:2:13: 'FilterMail' is not resolved per recipient: set it in [Notifier] FilterMail (\(resolvable))"),
        ("true cont spamassassin/SpamThreshold = 5",
         "t.conf:2:11: 'spamassassin/SpamThreshold' is not resolved per recipient: set SpamThreshold in [SpamAssassin]; rules can set spamassassin/SpamActions, spamassassin/UnconditionalSpamActions for this plug-in"),
        ("true cont ReturnReject = no, clamav/MaxSize = 1m",
         "t.conf:2:30: 'clamav/MaxSize' is not resolved per recipient: set MaxSize in [ClamAV]; rules can set clamav/InfectedActions for this plug-in"),
        ("true cont clamav/SpamActions = reject",
         "t.conf:2:11: 'clamav/SpamActions' is not resolved per recipient: set SpamActions in [ClamAV]; rules can set clamav/InfectedActions for this plug-in"),
        ("true cont milter/RejectActions = reject",
         "t.conf:2:11: unknown plug-in 'milter' in 'milter/RejectActions': expected one of clamav, spamassassin, rspamd, headersfilter, attachments"),
    ])
    func settingsNothingResolvesAreRefused(rule: String, expected: String) {
        #expect(errors("[Rules]\n" + rule) == [expected])
    }

    @Test func everySettableParameterIsAccepted() throws {
        #expect(ParameterCatalog.settable.count == 7 + 1 + 2 + 2 + 4 + 2)
        for name in ParameterCatalog.settable {
            let value = name == "SenderAddress" ? "inet:25@[::1]" : name == "SenderTLS" ? "verify" : name.hasSuffix("Filters") ? "clamav"
                : name.hasSuffix("Actions") || name == "ProcessingErrors" ? "pass" : "yes"
            let config = try PosternConfig.parse("[Rules]\ntrue cont \(name) = \(value)\n[Rule:g]\n\(name) = \(value)", path: "t")
            #expect(config.rules.rules[0].settings.map(\.name) == [name])
        }
        #expect(throws: ConfigErrors.self) { try PosternConfig.parse("[Rule:g]\nScanTimeout = 1m", path: "t") }
    }

    /// The catalog's verdicts are the ones the plug-ins' sections have actions for.
    @Test func verdictsMatchThePluginSections() {
        for (name, _) in PluginCatalog.displayNames {
            #expect(Set(PluginCatalog.defaults(name).actions.keys) == Set(PluginCatalog.verdicts(of: name)), "\(name)")
        }
    }
}
