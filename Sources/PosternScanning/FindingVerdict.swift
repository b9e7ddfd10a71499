import PosternPolicy

/// What a plug-in made of a message: `clean`, `skipped`, `error`, or one of the plug-in's own
/// verdicts (`infected`, `spam`, `banned`, a headers-filter keyword…), each of which names an
/// action parameter (`clamav/InfectedActions`).
///
/// A struct, not a closed enum: plug-in verdicts are names from ``PluginCatalog`` and the
/// headers filter's keywords, open to new plug-ins, yet never a bare `String` (as NIO's
/// `HTTPMethod` keeps methods open). String literals spell verdicts in tests and fixtures.
public struct FindingVerdict: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    public var description: String { rawValue }

    /// Nothing found: no actions.
    public static let clean = FindingVerdict(rawValue: "clean")
    /// Not scanned (over MaxSize): no actions, a header says so.
    public static let skipped = FindingVerdict(rawValue: "skipped")
    /// The scanner failed: `ProcessingErrors` applies, never a silent pass.
    public static let error = FindingVerdict(rawValue: "error")

    public static let infected = FindingVerdict(rawValue: PluginCatalog.infected)
    public static let spam = FindingVerdict(rawValue: PluginCatalog.spam)
    public static let unconditionalSpam = FindingVerdict(rawValue: PluginCatalog.unconditionalSpam)
    public static let banned = FindingVerdict(rawValue: PluginCatalog.banned)
    public static let archiveBomb = FindingVerdict(rawValue: PluginCatalog.archiveBomb)

    /// Whether the verdict asks for actions (a plug-in verdict or `error`).
    public var isBlocking: Bool { self != .clean && self != .skipped }
}
