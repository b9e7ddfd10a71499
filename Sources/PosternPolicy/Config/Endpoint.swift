import PosternSMTP
import PosternUtil
/// Where to connect or listen: `[lmtp:|smtp:]inet:PORT@HOST` or `[lmtp:|smtp:]local:/path`.
///
/// HOST may be the macros `CLIENT-IP` (the address receiverd got the message from) or
/// `SERVER-IP` (the address it was received on); ``substituting(clientIP:serverIP:)`` fills them
/// in per message. `description` gives the canonical text back (`smtp:` is the default and is
/// left out; IPv6 hosts are bracketed).
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The mail protocol spoken over the connection (the codec's type: envelopes keep it too).
    public typealias MailProtocol = PosternSMTP.MailProtocol

    /// A TCP host and port or a unix-domain socket path.
    public enum Location: Sendable, Hashable {
        /// IPv4/IPv6 literal (IPv6 without brackets), host name, or a macro.
        case inet(host: String, port: Int)
        /// A unix-domain socket; relative paths are relative to the working directory.
        case unix(path: String)
    }

    /// Host macro for the connecting client's address.
    public static let clientIPMacro = "CLIENT-IP"
    /// Host macro for the local address the message arrived on.
    public static let serverIPMacro = "SERVER-IP"

    /// SMTP or LMTP.
    public var mailProtocol: MailProtocol
    /// Where.
    public var location: Location

    /// Builds an endpoint from its parts.
    public init(mailProtocol: MailProtocol = .smtp, location: Location) {
        self.mailProtocol = mailProtocol
        self.location = location
    }

    /// Whether the host is `CLIENT-IP` or `SERVER-IP` and needs ``substituting(clientIP:serverIP:)``.
    public var hasMacros: Bool {
        guard case .inet(let host, _) = location else { return false }
        return host == Self.clientIPMacro || host == Self.serverIPMacro
    }

    /// Replaces the host macros with the message's addresses. A macro whose address is nil stays,
    /// so the caller can tell (``hasMacros``). IPv4-mapped IPv6 becomes plain IPv4: the MTA that
    /// sent over a dual-stack socket may well listen on IPv4 only.
    public func substituting(clientIP: String?, serverIP: String?) -> Endpoint {
        guard case .inet(let host, let port) = location else { return self }
        let value: String?
        switch host {
        case Self.clientIPMacro: value = clientIP
        case Self.serverIPMacro: value = serverIP
        default: value = nil
        }
        guard let value else { return self }
        var copy = self
        copy.location = .inet(host: Self.normalizedHost(value), port: port)
        return copy
    }

    private static func normalizedHost(_ ip: String) -> String {
        if let address = IPAddress(ip), address.isIPv4 { return address.description }
        if ip.hasPrefix("[") && ip.hasSuffix("]") { return String(ip.dropFirst().dropLast()) }
        return ip
    }

    public var description: String {
        let prefix = mailProtocol == .smtp ? "" : "\(mailProtocol.rawValue):"
        switch location {
        case .inet(let host, let port):
            return host.contains(":") ? "\(prefix)inet:\(port)@[\(host)]" : "\(prefix)inet:\(port)@\(host)"
        case .unix(let path):
            return "\(prefix)local:\(path)"
        }
    }
}
