import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Lazy per-parameter resolution: first match, cont, stop, unknown, groups.
@Suite struct RuleResolutionTests {
    static let seed = "!(from:\"\" || from:\"root@localhost\") cont SenderAddress = inet:10025@CLIENT-IP"

    @Test(arguments: [
        ("alice@example.com", "inet:10025@CLIENT-IP" as String?),
        ("", nil),
        ("root@localhost", nil),
        ("Root@LocalHost", nil),
    ])
    func seedRule(from: String, expected: String?) throws {
        let config = try PosternConfig.parse("[Rules]\n" + Self.seed, path: "t.conf")
        let context = RuleContext(from: from, rcpt: "bob@example.org", clientIP: "192.0.2.7")
        let resolution = config.rules.resolve("SenderAddress", in: context)
        #expect(resolution.value == expected)
        #expect(config.rules.value(of: "senderaddress", in: context) == expected)
        let route: Endpoint
        if case .endpoint(let endpoint)? = resolution.typed { route = endpoint } else { route = config.sender.address }
        let delivered = route.substituting(clientIP: context.clientIP, serverIP: nil).description
        #expect(delivered == (expected == nil ? "inet:10025@127.0.0.1" : "inet:10025@192.0.2.7"))
    }

    @Test func seedRuleIsSkippedWhileTheSenderIsUnknown() throws {
        let rules = try RuleSet.parse(Self.seed, path: "t")
        let resolution = rules.resolve("SenderAddress", in: RuleContext(rcpt: "bob@example.org"))
        #expect(resolution.value == nil)
        #expect(resolution.trace == [RuleTrace(line: 1, result: .unknown, setParameter: false, stopped: false)])
    }

    static let rules = """
        from:a@x cont clamav/InfectedActions = reject
        from:a@x cont clamav/InfectedActions = discard, spamassassin/SpamActions = tempfail
        from:b@x stop spamassassin/SpamActions = continue
        block:virus cont clamav/InfectedActions = tempfail
        true cont clamav/InfectedActions = pass, spamassassin/SpamActions = pass
        """

    @Test(arguments: [
        ("clamav/InfectedActions", "a@x", nil, "reject" as String?),    // first match wins
        ("spamassassin/SpamActions", "a@x", nil, "tempfail"),            // a true rule without it goes on (cont)
        ("clamav/InfectedActions", "b@x", nil, nil),                     // stop ends the search, unset
        ("spamassassin/SpamActions", "b@x", nil, "continue"),            // the stop rule itself may set
        ("clamav/InfectedActions", "c@x", nil, "pass"),                  // block: unknown → rule skipped, not stopped
        ("clamav/InfectedActions", "c@x", ["virus"], "tempfail"),
        ("clamav/InfectedActions", "c@x", ["other"], "pass"),
        ("CLAMAV/infectedactions", "a@x", nil, "reject"),                // names are case-insensitive
        ("rspamd/SpamActions", "a@x", nil, nil),
    ] as [(String, String, [String]?, String?)])
    func resolution(parameter: String, from: String, blocks: [String]?, expected: String?) throws {
        let rules = try RuleSet.parse(Self.rules, path: "t")
        let context = RuleContext(from: from, blocks: blocks)
        #expect(rules.resolve(parameter, in: context).value == expected)
        #expect(rules.value(of: parameter, in: context) == expected)
    }

    @Test func traceShowsEveryVisitedRule() throws {
        let rules = try RuleSet.parse(Self.rules, path: "t")
        #expect(rules.resolve("clamav/InfectedActions", in: RuleContext(from: "b@x")).trace == [
            RuleTrace(line: 1, result: .false, setParameter: false, stopped: false),
            RuleTrace(line: 2, result: .false, setParameter: false, stopped: false),
            RuleTrace(line: 3, result: .true, setParameter: false, stopped: true),
        ])
        #expect(rules.resolve("clamav/InfectedActions", in: RuleContext(from: "c@x")).trace.map(\.description) == [
            "line 1: false", "line 2: false", "line 3: false", "line 4: unknown", "line 5: true, set",
        ])
    }

    @Test func unknownDoesNotStop() throws {
        let rules = try RuleSet.parse("header:X-A:yes stop\ntrue cont clamav/InfectedActions = pass", path: "t")
        #expect(rules.value(of: "clamav/InfectedActions", in: RuleContext()) == "pass")
        #expect(rules.value(of: "clamav/InfectedActions", in: RuleContext(headers: [HeaderField(name: "X-A", value: "yes")])) == nil)
    }

    @Test func groupsExpandInPlace() throws {
        let text = """
            [Rules]
            from:a@x cont clamav/InfectedActions = discard, rule=Spam
            from:b@x cont rule=spam, clamav/InfectedActions = discard
            [Rule:Spam]
            clamav/InfectedActions = reject
            spamassassin/SpamActions = reject, notify
            """
        let config = try PosternConfig.parse(text, path: "t.conf")
        #expect(config.rules.value(of: "clamav/InfectedActions", in: RuleContext(from: "a@x")) == "discard")
        #expect(config.rules.value(of: "clamav/InfectedActions", in: RuleContext(from: "b@x")) == "reject")
        let resolution = config.rules.resolve("SpamAssassin/SpamActions", in: RuleContext(from: "a@x"))
        #expect(resolution.setting?.group == "spam")
        #expect(resolution.typed == .actions(ActionList(main: .reject, extras: [.notify])))
        #expect(config.rules.groups["spam"]?.count == 2)
        #expect(config.sections["rule:spam"]?.keys["clamav/infectedactions"]?.values.first?.text == "reject")
    }

    @Test func emptyRuleSetResolvesNothing() {
        let resolution = RuleSet().resolve("SenderAddress", in: RuleContext(from: "a@x"))
        #expect(resolution.value == nil)
        #expect(resolution.trace.isEmpty)
    }
}
