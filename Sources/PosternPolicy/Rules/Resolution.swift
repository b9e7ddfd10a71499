/// The outcome of resolving one parameter: its value (nil = use the section default) and, for
/// `posternctl rules test` and debug logs, what every visited rule did.
public struct Resolution: Sendable {
    /// The value as written, nil when no applying rule set it.
    public var value: String?
    /// The setting that gave the value, with its parsed form and the group it came from.
    public var setting: Setting?
    /// One entry per rule visited, top to bottom.
    public var trace: [RuleTrace]

    /// The parsed value.
    public var typed: ParameterValue? { setting?.typed }
}

/// What one rule did while a parameter was resolved.
public struct RuleTrace: Sendable, Hashable, CustomStringConvertible {
    /// The rule's line in the configuration file.
    public var line: Int
    /// Its condition's value; only `.true` applies.
    public var result: Truth
    /// Whether it gave the parameter its value (and so ended the search).
    public var setParameter: Bool
    /// Whether it was a `stop` rule that ended the search without setting the parameter.
    public var stopped: Bool

    /// Creates an entry.
    public init(line: Int, result: Truth, setParameter: Bool, stopped: Bool) {
        self.line = line
        self.result = result
        self.setParameter = setParameter
        self.stopped = stopped
    }

    public var description: String {
        "line \(line): \(result.rawValue)\(setParameter ? ", set" : "")\(stopped ? ", stop" : "")"
    }
}
