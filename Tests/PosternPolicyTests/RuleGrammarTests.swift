import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Parses `condition` as a rule and evaluates it in `context`.
func evaluateCondition(_ condition: String, _ context: RuleContext = RuleContext()) throws -> Truth {
    let rules = try RuleSet.parse(condition + " cont clamav/InfectedActions = pass", path: "t.rules")
    return rules.rules[0].evaluate(context)
}

/// Operators, precedence, parentheses, quoting, unknown propagation.
@Suite struct RuleGrammarTests {
    @Test(arguments: [
        ("true", Truth.true), ("false", .false), ("TRUE", .true),
        ("!true", .false), ("!!true", .true), ("! false", .true),
        ("true || false && false", .true),        // && binds tighter than ||
        ("(true || false) && false", .false),
        ("!false && false", .false),              // ! binds tighter than &&
        ("!(false && false)", .true),
        ("false && true || true", .true),
        ("false || false || true", .true),
        ("true && true && false", .false),
        ("!(false || true)", .false),
        ("((true))", .true),
        ("(true&&!false)||false", .true),
    ])
    func precedence(condition: String, expected: Truth) throws {
        #expect(try evaluateCondition(condition) == expected)
    }

    /// Kleene logic: `block:` is unknown before scanning (blocks nil).
    @Test(arguments: [
        ("block:x", Truth.unknown), ("!block:x", .unknown),
        ("false && block:x", .false), ("block:x && false", .false),
        ("true || block:x", .true), ("block:x || true", .true),
        ("true && block:x", .unknown), ("false || block:x", .unknown),
        ("!(false && block:x)", .true), ("!(true && block:x)", .unknown),
        ("block:x || block:y", .unknown),
    ])
    func unknownPropagation(condition: String, expected: Truth) throws {
        #expect(try evaluateCondition(condition) == expected)
    }

    @Test(arguments: [
        ("from:\"\"", "", Truth.true),
        ("from:\"\"", "a@b", .false),
        ("from:\"root@localhost\"", "ROOT@localhost", .true),
        ("from:\"odd \\\"name\\\"@x\"", "odd \"name\"@x", .true),
        ("from:\"a b@c\" || false", "a b@c", .true),
        ("(from:x@y)", "x@y", .true),
        ("from:regex:^(a|b)@x$", "b@x", .true),
        ("from:regex:^(a|b)@x$||false", "c@x", .false),
        ("(from:regex:(a|b)@x)", "a@x", .true),
        ("from:regex:\"^a b\"", "a bc", .true),
    ])
    func quotingAndValueBoundaries(condition: String, from: String, expected: Truth) throws {
        #expect(try evaluateCondition(condition, RuleContext(from: from)) == expected)
    }

    @Test func ruleKeepsLineTextFlowAndSettings() throws {
        let text = "# rules\nfrom:a@x \\\n  stop SenderAddress = \"lmtp:inet:24@[::1]\", attachments/BannedActions = \"reject, notify\", rule=G\n[Rule:g]\nclamav/InfectedActions = reject, quarantine\n"
        let rules = try RuleSet.parse(text, path: "t.rules")
        let rule = try #require(rules.rules.first)
        #expect(rule.line == 2)
        #expect(rule.text == "from:a@x stop SenderAddress = \"lmtp:inet:24@[::1]\", attachments/BannedActions = \"reject, notify\", rule=G")
        #expect(rule.flow == .stop)
        #expect(rule.settings.map(\.name) == ["SenderAddress", "attachments/BannedActions", "clamav/InfectedActions"])
        #expect(rule.settings.map(\.value) == ["lmtp:inet:24@[::1]", "reject, notify", "reject, quarantine"])
        #expect(rule.settings.map(\.group) == [nil, nil, "g"])
        #expect(rule.settings[0].typed == .endpoint(try Endpoint.parse("lmtp:inet:24@[::1]")))
        #expect(rule.settings[2].typed == .actions(ActionList(main: .reject, extras: [.quarantine])))
        #expect(rules.parameterNames == ["SenderAddress", "attachments/BannedActions", "clamav/InfectedActions"])
    }

    @Test func settingsAreOptionalAndValuesTrimmed() throws {
        let rules = try RuleSet.parse("true cont\nfalse STOP\ntrue cont clamav/InfectedActions =   discard   ,rspamd/SpamActions=\"pass\"", path: "t.rules")
        #expect(rules.rules.map(\.flow) == [.cont, .stop, .cont])
        #expect(rules.rules[0].settings.isEmpty)
        #expect(rules.rules[2].settings.map(\.value) == ["discard", "pass"])
    }

    @Test func usesHeaders() throws {
        #expect(try !RuleSet.parse("from:a cont", path: "t").usesHeaders)
        #expect(try RuleSet.parse("from:a cont\ntrue && !(header:Subject:x) cont", path: "t").usesHeaders)
    }

    @Test func typedSettingValues() throws {
        let rules = try RuleSet.parse(
            "true cont ReturnReject = no, BeforeQueueFilters = \"ClamAV, rspamd\", ProcessingErrors = pass, SkipDSNOnBlock = yes",
            path: "t")
        #expect(rules.rules[0].settings.map(\.typed) == [
            .bool(false), .list(["clamav", "rspamd"]), .actions(ActionList(main: .pass)), .bool(true),
        ])
    }

    @Test func rulesFileRefusesOtherSections() {
        #expect(throws: ConfigErrors.self) { try RuleSet.parse("true cont\n[Receiver]\nMaxSessions = 1", path: "t") }
    }
}
