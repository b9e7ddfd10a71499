import PosternUtil
/// One `PARAMETER = VALUE` of a rule or of a `[Rule:GROUP]` section, checked at load time.
public struct Setting: Sendable, Hashable {
    /// Canonical spelling for core parameters (`SenderAddress`), as written for plug-in ones.
    public var name: String
    /// The value as written, quotes removed.
    public var value: String
    /// The value parsed according to the parameter's kind.
    public var typed: ParameterValue
    /// The `[Rule:GROUP]` it came from, lower-cased; nil when written in the rule itself.
    public var group: String?
    /// Lower-cased name, for allocation-free case-insensitive lookup.
    package let key: String

    package init(name: String, value: String, typed: ParameterValue, group: String?) {
        self.name = name
        self.value = value
        self.typed = typed
        self.group = group
        self.key = ASCII.lowercased(name)
    }
}

/// A setting's value parsed once at load so resolution never parses.
public enum ParameterValue: Sendable, Hashable {
    /// A keyword (`SenderTLS`), lower-cased.
    case text(String)
    case endpoint(Endpoint)
    case actions(ActionList)
    case bool(Bool)
    /// Plug-in names or keywords, lower-cased.
    case list([String])
    case duration(Duration)
    /// Bytes.
    case size(Int)
    case number(Double)
}
