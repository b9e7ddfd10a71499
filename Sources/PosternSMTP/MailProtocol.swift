/// The mail protocol spoken on a connection: SMTP (RFC 5321) or LMTP (RFC 2033), which
/// differs in LHLO and in one reply per recipient after the data. The raw value is the word
/// used in the configuration (`lmtp:` prefix), the spool (`protocol lmtp`) and `protocol:` terms.
/// - SeeAlso: RFC 2033 §4
public enum MailProtocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case smtp, lmtp

    public var description: String { rawValue }
}
