import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Every error carries `file:line:column` pointing at the offending token.
@Suite struct ConfigErrorTests {
    private func errors(_ text: String) -> [String] {
        do {
            _ = try PosternConfig.parse(text, path: "t.conf")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test(arguments: [
        ("Key = 1", "t.conf:1:1: line outside any section"),
        ("[Receiver]\n  Foo = 1", "t.conf:2:3: unknown key 'Foo' in [Receiver]"),
        ("[Receiver]\nMaxMessageSize = 10x",
         "t.conf:2:18: invalid value '10x' for MaxMessageSize: expected a size such as 10m, 400k, 1g or a number of bytes"),
        ("[General]\nHostname = \"abc", "t.conf:2:12: unterminated quoted string"),
        ("[Receiver\nAddress = x", "t.conf:1:1: missing ']' in section header"),
        ("[Sender]\nAddress = inet:99999@127.0.0.1", "t.conf:2:16: invalid port: expected a number from 1 to 65535"),
        ("[Sender]\nAddress = inet:25@2001:db8::1",
         "t.conf:2:19: IPv6 address must be written in brackets: inet:PORT@[ADDRESS]"),
        ("[Receiver]\nReturnReject = maybe", "t.conf:2:16: invalid value 'maybe' for ReturnReject: expected yes or no"),
        ("[Receiver]\nStressThreshold = 120%", "t.conf:2:19: invalid value '120%' for StressThreshold: expected a percentage from 0% to 100%"),
        ("[Receiver]\nStressThreshold = %", "t.conf:2:19: invalid value '%' for StressThreshold: expected a percentage from 0% to 100%"),
        ("[Receiver]\nMaxSessions = 1\nMaxSessions = 2", "t.conf:3:1: duplicate key 'MaxSessions' in [Receiver]"),
        ("[Receiver]\nProtectedNetworks = 127.0.0.0/8, 10.0.0.0/33",
         "t.conf:2:34: invalid network '10.0.0.0/33': expected an address or ADDRESS/PREFIX"),
        ("[Receiver]\nAddress = inet:1@a,, inet:2@b", "t.conf:2:20: empty item in list Address"),
        ("[Receiver]\nProcessingErrors = tempfail, bounce",
         "t.conf:2:30: unknown action 'bounce': expected quarantine, redirect(…), notify, score(…) or add-header(…)"),
        ("[Receiver]\nAddress = inet:10025@CLIENT-IP", "t.conf:2:11: CLIENT-IP and SERVER-IP cannot be used in a listening address"),
        ("[Sender]\nAddress = inet:10025@CLIENT-IP",
         "t.conf:2:11: the default route cannot use CLIENT-IP or SERVER-IP; set SenderAddress in a rule instead"),
        ("[Sender]\nRetryIntervals = 1m, soon", "t.conf:2:22: invalid time 'soon': expected e.g. 30s, 5m, 2h, 1d or 500ms"),
        ("[General]\nLogLevel = loud",
         "t.conf:2:12: invalid LogLevel 'loud': expected one of trace, debug, info, notice, warning, error, critical"),
        ("[Rules]\nfrom:a@b cont Foo = 1", "t.conf:2:15: unknown parameter 'Foo': rules can set SenderAddress, SenderTLS, ProcessingErrors, ReturnReject, SkipDSNOnBlock, BeforeQueueFilters, AfterQueueFilters, ScanTimeout, AdminMail, FilterMail, Notify and the plug-ins' action lists (e.g. clamav/InfectedActions), MaxSize and spam thresholds"),
        ("[Rules]\nfrom:a@b && (to:x cont", "t.conf:2:19: expected ')'"),
        ("[Rules]\nfrom:a@b \\\n   && bogus:x cont", "t.conf:3:7: unknown term 'bogus:'"),
        ("[Rules]\nfrom:a@b cont rule=missing", "t.conf:2:15: unknown rule group 'missing' (no [Rule:missing] section)"),
        ("[Rules]\nfrom:x cont SenderAddress = inet:25@[::1", "t.conf:2:37: SenderAddress: invalid IPv6 address: expected [ADDRESS]"),
        ("[Rules]\nfrom: x cont", "t.conf:2:6: missing value after 'from:' (no space is allowed after ':')"),
        ("[Rules]\nfrom:x cont clamav/InfectedActions = \"reject, bogus\"",
         "t.conf:2:47: clamav/InfectedActions: unknown action 'bogus': expected quarantine, redirect(…), notify, score(…) or add-header(…)"),
        ("[Rules]\nfrom:x cont\n[Rule:g]\nSenderAddress = bad",
         "t.conf:4:17: SenderAddress: invalid address: expected inet:PORT@HOST or local:/path (optionally after lmtp: or smtp:)"),
        ("[Rules]\ntrue cont rule=g\n[Rule:g]\nrule = h", "t.conf:4:1: rule= cannot be used inside [Rule:g]"),
        ("[Rules]\nfrom:file:/nonexistent/list cont", "t.conf:2:1: cannot read '/nonexistent/list': No such file or directory"),
        ("[Rules]\nfrom:x", "t.conf:2:7: expected 'cont' or 'stop' after the condition"),
        ("[Rules]\nfrom:x to:y cont", "t.conf:2:8: expected '&&', '||', 'cont' or 'stop'"),
        ("[Rules]\ncont X/Y = 1", "t.conf:2:1: missing condition before 'cont'"),
        ("[Rules]\nsize:>10q cont", "t.conf:2:7: invalid value '10q': expected a size such as 10m"),
        ("[Rules]\nhelo:cidr:10.0.0.0/8 cont", "t.conf:2:6: cidr: lookups are only for client-ip, server-ip and xforward-addr"),
        ("[Rules]\nclient-ip:10.0.0.0/8,300.0.0.1 cont", "t.conf:2:22: invalid address or network '300.0.0.1'"),
        ("[Rules]\nclient-ip:cidr:\"10.0.0.0/8, 300.0.0.1\" cont", "t.conf:2:29: invalid address or network '300.0.0.1'"),
        ("[Rules]\nprotocol:esmtp cont", "t.conf:2:10: invalid protocol 'esmtp': expected smtp or lmtp"),
        ("[Rules]\ntrue cont ReturnReject = perhaps", "t.conf:2:26: ReturnReject: invalid value 'perhaps': expected yes or no"),
        ("[Rules]\ntrue cont clamav/InfectedActions = pass, CLAMAV/infectedactions = reject",
         "t.conf:2:42: parameter 'CLAMAV/infectedactions' set twice in one rule"),
        ("[Rules]\ntrue cont X/Y = \"a\" b", "t.conf:2:21: expected ',' between settings"),
        ("[Rules]\ntrue cont reject, quarantine", "t.conf:2:17: expected '=' after 'reject'"),
    ])
    func singleError(text: String, expected: String) {
        #expect(errors(text) == [expected])
    }

    @Test func regexErrorsPointAtThePattern() throws {
        let found = errors("[Rules]\nheader:Subject:regex:\"a(\" cont X/Y = 1")
        try #require(found.count == 1)
        #expect(found[0].hasPrefix("t.conf:2:23: invalid regular expression 'a(': "))
    }

    @Test func errorsAreCollectedAndSorted() {
        let text = """
            [Rules]
            true cont Bogus = 1
            [Receiver]
            MaxRecipients = 0
            Nope = 1
            [Sender]
            ConnectTimeout = 0s
            """
        let thrown = #expect(throws: ConfigErrors.self) { try PosternConfig.parse(text, path: "t.conf") }
        #expect(thrown?.description == """
            t.conf:2:11: unknown parameter 'Bogus': rules can set SenderAddress, SenderTLS, ProcessingErrors, ReturnReject, SkipDSNOnBlock, BeforeQueueFilters, AfterQueueFilters, ScanTimeout, AdminMail, FilterMail, Notify and the plug-ins' action lists (e.g. clamav/InfectedActions), MaxSize and spam thresholds
            t.conf:4:17: invalid value '0' for MaxRecipients: expected a number from 1 to 10000
            t.conf:5:1: unknown key 'Nope' in [Receiver]
            t.conf:7:18: invalid value '0s' for ConnectTimeout: expected a time such as 30s, 5m, 2h, 1d or 500ms
            """)
    }

    @Test func unreadableFile() {
        let thrown = #expect(throws: ConfigErrors.self) { try PosternConfig.load(path: "/nonexistent/postern.conf") }
        #expect(thrown?.description == "/nonexistent/postern.conf: cannot read '/nonexistent/postern.conf': No such file or directory")
    }
}
