/// What a scan came to for the message as a whole, one word for logs, metrics and
/// `posternctl queue show` (each recipient's own fate is its route's status). The spool
/// writes the word (`verdict pass`); ``init(_:)`` reads it back.
/// - SeeAlso: docs/spool-format.md
public enum VerdictAction: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Every recipient gets the message.
    case pass
    /// Refused to the client (before the queue), or blocked for every recipient.
    case reject
    /// Refused for now before the queue (451): the client tries again.
    case tempfail
    /// Accepted and dropped for every recipient.
    case discard
    /// Recipients fared differently.
    case split
    /// A copy `posternctl quarantine release` put back in the queue; the quarantined message's id.
    case released(from: String)
    /// A word this version does not write (a newer Postern's): kept, and written back as it came.
    case other(String)

    private static let releasedPrefix = "released from quarantine "

    public init(_ word: String) {
        switch word {
        case "pass": self = .pass
        case "reject": self = .reject
        case "tempfail": self = .tempfail
        case "discard": self = .discard
        case "split": self = .split
        case _ where word.hasPrefix(Self.releasedPrefix): self = .released(from: String(word.dropFirst(Self.releasedPrefix.count)))
        default: self = .other(word)
        }
    }

    /// The spool's word, as fixtures spell it.
    public init(stringLiteral word: String) { self.init(word) }

    public var description: String {
        switch self {
        case .pass: "pass"
        case .reject: "reject"
        case .tempfail: "tempfail"
        case .discard: "discard"
        case .split: "split"
        case .released(let id): Self.releasedPrefix + id
        case .other(let word): word
        }
    }
}
