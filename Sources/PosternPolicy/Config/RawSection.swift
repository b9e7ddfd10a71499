import PosternUtil
/// A section as written in the file, before any interpretation.
///
/// Plug-in sections (`[ClamAV]`, `[Milter:spamd]`, …) and `[Rule:NAME]` groups are kept in this
/// form so code that knows them can read them later with a ``SectionReader``.
public struct RawSection: Sendable {
    /// The name as first written, e.g. `Milter:spamd`.
    public var name: String
    /// Line of the first `[Name]` header (0 for a section that was not written).
    public var line: Int
    /// Keys, lower-cased, each with every occurrence in file order.
    public var keys: [String: RawKey] = [:]
    /// Lower-cased keys in order of first appearance.
    public var order: [String] = []
    /// For `[Rules]`: the logical rule lines, continuations joined.
    package var ruleLines: [LogicalLine] = []

    /// An empty section.
    public init(name: String, line: Int) {
        self.name = name
        self.line = line
    }

    package mutating func append(_ value: RawValue) {
        let key = ASCII.lowercased(value.key)
        if keys[key] == nil {
            keys[key] = RawKey(name: value.key, values: [])
            order.append(key)
        }
        keys[key]?.values.append(value)
    }
}

/// One key of a section with all of its occurrences (repeats append to lists).
public struct RawKey: Sendable {
    /// The key as first written.
    public var name: String
    /// Every `Key = value` line for it.
    public var values: [RawValue]
}

/// One `Key = value` line.
public struct RawValue: Sendable {
    /// The key as written on this line.
    public var key: String
    /// Physical line.
    public var line: Int
    /// Column of the key.
    public var keyColumn: Int
    /// Column of the first character of the value's content (inside a leading quote).
    public var column: Int
    /// The value as one string: trimmed, quotes removed and unescaped, commas kept.
    public var text: String
    /// The value split at commas outside quotes.
    public var items: [RawItem]
    /// The value exactly as written (quotes and escapes kept, trailing comment dropped), for
    /// `posternctl config show`, which prints it back.
    public var source: String = ""
}

/// One comma-separated element of a value.
public struct RawItem: Sendable {
    /// Trimmed, unquoted text.
    public var text: String
    /// Physical line.
    public var line: Int
    /// Column of its first character.
    public var column: Int
    /// Whether it was empty and unquoted (`a,,b`): an error when read as a list.
    public var isMissing: Bool
}
