import PosternUtil
/// How senderd protects its connection to a next hop with STARTTLS (RFC 3207); the levels and
/// their names are Postfix's `smtp_tls_security_level`.
/// - SeeAlso: `docs/configuration.md` ([Sender] TLS), Postfix TLS_README
public enum TLSPolicy: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Never STARTTLS.
    case none
    /// STARTTLS when offered, certificate not checked; clear text otherwise.
    case may
    /// STARTTLS or no delivery; certificate not checked.
    case encrypt
    /// STARTTLS or no delivery; certificate checked against the CA file and the next hop's name.
    case verify

    /// Whether mail must not go out without TLS.
    public var requiresTLS: Bool { self == .encrypt || self == .verify }

    public var description: String { rawValue }

    /// Case-insensitive.
    public init?(text: String) {
        self.init(rawValue: ASCII.lowercased(text))
    }
}
