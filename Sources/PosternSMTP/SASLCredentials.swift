/// A user name and password for SMTP AUTH at a next hop. The password never appears in
/// `description`, `debugDescription` or a `dump`, so no log line or error can carry it.
public struct SASLCredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The authentication identity (RFC 4616 `authcid`).
    public var username: String
    /// The secret.
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "\(username):<password hidden>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["username": username], displayStyle: .struct) }
}
