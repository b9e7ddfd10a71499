import PosternUtil
/// One line of `[Rules]`: a condition, `cont` or `stop`, and settings.
public struct Rule: Sendable {
    /// The (first physical) line in the configuration file, for traces.
    public var line: Int
    /// The rule as written, continuations joined, for traces.
    public var text: String
    /// What happens after the rule applied without setting the parameter being resolved.
    public var flow: RuleFlow
    /// Its settings with `rule=GROUP` expanded in place; the first one for a parameter counts.
    public var settings: [Setting]
    package var condition: Condition

    /// The condition's three-valued result.
    public func evaluate(_ context: RuleContext) -> Truth {
        condition.evaluate(context)
    }

    /// The setting for `parameter` (case-insensitive), if the rule has one.
    @inline(__always)
    public func setting(for parameter: String) -> Setting? {
        for setting in settings where ASCII.equal(parameter, lowered: setting.key) { return setting }
        return nil
    }
}

/// `cont` or `stop`.
public enum RuleFlow: String, Sendable, Hashable {
    /// Go on to the next rule.
    case cont
    /// End the search; an unset parameter takes its section default.
    case stop
}
