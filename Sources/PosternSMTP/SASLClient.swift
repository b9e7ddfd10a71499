import PosternUtil
/// The client side of SMTP AUTH (RFC 4954) for the two mechanisms every submission server
/// offers: PLAIN (RFC 4616, one round trip with an initial response) and LOGIN
/// (draft-murchison-sasl-login: user name, then password, each after a 334 challenge).
///
/// Pure: it says what to send next; the caller does the I/O. The lines it returns carry the
/// secret and must never be logged.
/// - SeeAlso: RFC 4954 §4, Postfix smtp_sasl_glue.c
public struct SASLClient: Sendable {
    /// The mechanisms spoken, in order of preference.
    public enum Mechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    /// What to do after a reply.
    public enum Step: Sendable, Equatable {
        /// Send this line (CRLF included) and feed the reply to ``next(_:)``.
        case send(String)
        /// Authenticated (235).
        case done
        /// The server refused; its reply says why.
        case failed(Reply)
    }

    /// LOGIN asks twice; a server asking more is not speaking LOGIN and is cancelled.
    package static let maximumChallenges = 2

    public let mechanism: Mechanism
    private let credentials: SASLCredentials
    private var challenges = 0
    private var cancelled = false

    public init(mechanism: Mechanism, credentials: SASLCredentials) {
        self.mechanism = mechanism
        self.credentials = credentials
    }

    /// The mechanism to use, from the EHLO `AUTH` keyword's value (`PLAIN LOGIN CRAM-MD5`);
    /// nil when the server offers neither.
    public static func choose(offered: String) -> Mechanism? {
        let names = Set(offered.split(separator: " ").map { ASCII.lowercased(String($0)) })
        return Mechanism.allCases.first { names.contains(ASCII.lowercased($0.rawValue)) }
    }

    /// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 §2), with no authzid:
    /// the server derives it from the user name.
    public static func plainResponse(_ c: SASLCredentials) -> String {
        Base64.encode([0] + Array(c.username.utf8) + [0] + Array(c.password.utf8))
    }

    /// The AUTH command that starts the exchange.
    public func start() -> String {
        switch mechanism {
        case .plain: return "AUTH PLAIN \(SASLClient.plainResponse(credentials))\r\n"
        case .login: return "AUTH LOGIN\r\n"
        }
    }

    /// The next step after `reply`.
    public mutating func next(_ reply: Reply) -> Step {
        if reply.code == 235 && !cancelled { return .done }
        guard reply.code == 334, !cancelled else {
            return .failed(reply.isPositive ? Reply(535, EnhancedStatus(5, 7, 8), "authentication cancelled: \(reply)") : reply)
        }
        challenges += 1
        guard mechanism == .login, challenges <= SASLClient.maximumChallenges else {
            cancelled = true
            return .send("*\r\n")   // RFC 4954 §4: the client cancels with "*"
        }
        let answer = challenges == 1 ? credentials.username : credentials.password
        return .send(Base64.encode(Array(answer.utf8)) + "\r\n")
    }
}
