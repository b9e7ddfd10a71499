/// The `[Rules]` section and its `[Rule:NAME]` groups, parsed and checked once at load.
///
/// Resolution is lazy and per parameter: to find P, walk the rules top to bottom; a rule whose
/// condition is *true* and that sets P gives P its value (first match wins); a true rule that
/// does not set P goes on (`cont`) or ends the search with P unset (`stop`); a rule whose
/// condition is false or *unknown* is skipped as if it were not there.
/// - SeeAlso: `docs/rules.md`, DESIGN.md §4
public struct RuleSet: Sendable {
    /// The rules in file order.
    public let rules: [Rule]
    /// `[Rule:NAME]` groups by lower-cased name, already checked.
    public var groups: [String: [Setting]]

    /// A rule set from parts (tests, tools).
    public init(rules: [Rule] = [], groups: [String: [Setting]] = [:]) {
        self.rules = rules
        self.groups = groups
        usesHeaders = rules.contains { $0.condition.usesHeaders }
    }

    /// Whether any rule has a `header:` term, so callers parse headers only when needed
    /// (computed once: scannerd asks for every message).
    public let usesHeaders: Bool

    /// Every parameter some rule can set, in order of first appearance (for `rules test`).
    public var parameterNames: [String] {
        var seen: Set<String> = []
        return rules.flatMap(\.settings).compactMap { seen.insert($0.key).inserted ? $0.name : nil }
    }

    /// Resolves `parameter` (case-insensitive) with a trace of every rule visited.
    public func resolve(_ parameter: String, in context: RuleContext) -> Resolution {
        var trace: [RuleTrace] = []
        trace.reserveCapacity(rules.count)
        for rule in rules {
            let result = rule.evaluate(context)
            guard result == .true else {
                trace.append(RuleTrace(line: rule.line, result: result, setParameter: false, stopped: false))
                continue
            }
            if let setting = rule.setting(for: parameter) {
                trace.append(RuleTrace(line: rule.line, result: result, setParameter: true, stopped: false))
                return Resolution(value: setting.value, setting: setting, trace: trace)
            }
            trace.append(RuleTrace(line: rule.line, result: result, setParameter: false, stopped: rule.flow == .stop))
            if rule.flow == .stop { break }
        }
        return Resolution(value: nil, setting: nil, trace: trace)
    }

    /// The same search without a trace: the hot path, which allocates nothing.
    public func setting(for parameter: String, in context: RuleContext) -> Setting? {
        for rule in rules where rule.evaluate(context) == .true {
            if let setting = rule.setting(for: parameter) { return setting }
            if rule.flow == .stop { return nil }
        }
        return nil
    }

    /// The resolved value as written, nil for the section default.
    public func value(of parameter: String, in context: RuleContext) -> String? {
        setting(for: parameter, in: context)?.value
    }
}
