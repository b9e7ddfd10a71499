/// What to do with a message for one verdict: one main action and up to three extras, e.g.
/// `reject, quarantine, notify` or `pass, add-header(X-Spam: yes), score(5)`.
///
/// Values of `ProcessingErrors` and every parameter named `…Actions` (`clamav/InfectedActions`).
public struct ActionList: Sendable, Hashable, CustomStringConvertible {
    /// The header name `add-header(BODY)` uses when none is given.
    public static let defaultHeaderName = "X-Postern"
    /// DESIGN.md §4 allows at most three extras per list.
    public static let maximumExtras = 3

    /// The decision for the message.
    public var main: MainAction
    /// Things done in addition, in the order written.
    public var extras: [ExtraAction]

    /// Builds a list; callers that parse should use ``parse(_:)`` to get the checks.
    public init(main: MainAction, extras: [ExtraAction] = []) {
        self.main = main
        self.extras = extras
    }

    /// Canonical text, e.g. `reject, quarantine, redirect(a@x|b@y)`.
    public var description: String {
        ([main.rawValue] + extras.map(\.description)).joined(separator: ", ")
    }
}

/// The main action of an ``ActionList``.
public enum MainAction: String, Sendable, Hashable, CaseIterable {
    /// Deliver.
    case pass
    /// Refuse with 5xx (or accept and send a DSN when `ReturnReject = no`).
    case reject
    /// Refuse with 4xx so the MTA retries.
    case tempfail
    /// Accept and drop.
    case discard
    /// Take no decision here and let the next check decide.
    case `continue`
}

/// An additional action of an ``ActionList``.
public enum ExtraAction: Sendable, Hashable, CustomStringConvertible {
    /// Keep a copy in the quarantine.
    case quarantine
    /// Deliver to these addresses instead of the original recipients.
    case redirect([String])
    /// Send the notification for this verdict.
    case notify
    /// Add to the message's score.
    case score(Double)
    /// Add a header field; the body is already sanitised (no CR, LF, NUL or other controls).
    case addHeader(name: String, body: String)

    public var description: String {
        switch self {
        case .quarantine: "quarantine"
        case .redirect(let addresses): "redirect(\(addresses.joined(separator: "|")))"
        case .notify: "notify"
        case .score(let value): "score(\(value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)))"
        case .addHeader(let name, let body): "add-header(\(name): \(body))"
        }
    }
}
