import Glibc
import PosternUtil

extension Endpoint {
    /// `sun_path` is 108 bytes on Linux including the terminating NUL.
    package static let maximumSocketPathLength = 107

    /// ```
    /// endpoint = [("smtp" / "lmtp") ":"] (inet / local)     ; names case-insensitive
    /// inet     = "inet:" port "@" host                      ; port 1–65535
    /// host     = IPv4 / "[" IPv6 "]" / hostname / "CLIENT-IP" / "SERVER-IP"
    /// local    = ("local:" / "unix:") path
    /// ```
    public static func parse(_ text: String) throws(EndpointError) -> Endpoint {
        var rest = Substring(text)
        var offset = 0
        var mailProtocol = MailProtocol.smtp
        // One protocol prefix at most: "smtp:lmtp:…" is refused, not read as LMTP.
        if let candidate = MailProtocol.allCases.first(where: { hasPrefix(rest, $0.rawValue + ":") }) {
            mailProtocol = candidate
            rest = rest.dropFirst(5)
            offset = 5
        }
        if hasPrefix(rest, "inet:") {
            return Endpoint(mailProtocol: mailProtocol, location: try parseInet(rest.dropFirst(5), offset: offset + 5))
        }
        for scheme in ["local:", "unix:"] where hasPrefix(rest, scheme) {
            let path = rest.dropFirst(scheme.utf8.count)
            guard !path.isEmpty else { throw EndpointError(.missingPath, offset: offset + scheme.utf8.count) }
            guard path.utf8.count <= maximumSocketPathLength else {
                throw EndpointError(.pathTooLong, offset: offset + scheme.utf8.count)
            }
            return Endpoint(mailProtocol: mailProtocol, location: .unix(path: String(path)))
        }
        throw EndpointError(.unknownScheme, offset: offset)
    }

    private static func parseInet(_ text: Substring, offset: Int) throws(EndpointError) -> Location {
        guard let at = text.firstIndex(of: "@") else { throw EndpointError(.missingAt, offset: offset) }
        let portText = text[..<at]
        guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy(ASCII.isDigit),
              let port = Int(portText), (1...65535).contains(port) else {
            throw EndpointError(.invalidPort, offset: offset)
        }
        let hostOffset = offset + portText.utf8.count + 1
        let host = text[text.index(after: at)...]
        guard !host.isEmpty else { throw EndpointError(.missingHost, offset: hostOffset) }
        if host.hasPrefix("[") {
            let inner = String(host.dropFirst().dropLast())
            var address = in6_addr()
            // inet_pton reads a C string: it would stop at a NUL and take what comes before it.
            guard host.hasSuffix("]"), !inner.utf8.contains(0), inet_pton(AF_INET6, inner, &address) == 1 else {
                throw EndpointError(.invalidIPv6, offset: hostOffset)
            }
            return .inet(host: inner, port: port)
        }
        for macro in [clientIPMacro, serverIPMacro] where ASCII.equal(host.utf8, lowered: macro.lowercased().utf8) {
            return .inet(host: macro, port: port)
        }
        if host.contains(":") { throw EndpointError(.unbracketedIPv6, offset: hostOffset) }
        if host.utf8.allSatisfy({ ASCII.isDigit($0) || $0 == 0x2E }) {
            var address = in_addr()
            guard inet_pton(AF_INET, String(host), &address) == 1 else {
                throw EndpointError(.invalidIPv4, offset: hostOffset)
            }
            return .inet(host: String(host), port: port)
        }
        if let bad = host.utf8.firstIndex(where: { !(ASCII.isAlphanumeric($0) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F) }) {
            throw EndpointError(.invalidHost, offset: hostOffset + host.utf8.distance(from: host.utf8.startIndex, to: bad))
        }
        return .inet(host: String(host), port: port)
    }

    private static func hasPrefix(_ text: Substring, _ prefix: String) -> Bool {
        text.utf8.count >= prefix.utf8.count && ASCII.equal(text.utf8.prefix(prefix.utf8.count), lowered: prefix.utf8)
    }
}

/// Why an address did not parse, and the byte offset in the text where it went wrong.
public struct EndpointError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of mistake.
    public enum Reason: Sendable, Hashable {
        case unknownScheme, missingAt, invalidPort, missingHost, invalidIPv4, invalidIPv6
        case unbracketedIPv6, invalidHost, missingPath, pathTooLong, macroNotAllowed
    }

    /// What is wrong.
    public var reason: Reason
    /// Byte offset into the address text.
    public var offset: Int

    /// Creates an error.
    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        switch reason {
        case .unknownScheme: "invalid address: expected inet:PORT@HOST or local:/path (optionally after lmtp: or smtp:)"
        case .missingAt: "invalid address: expected inet:PORT@HOST"
        case .invalidPort: "invalid port: expected a number from 1 to 65535"
        case .missingHost: "missing host after '@'"
        case .invalidIPv4: "invalid IPv4 address"
        case .invalidIPv6: "invalid IPv6 address: expected [ADDRESS]"
        case .unbracketedIPv6: "IPv6 address must be written in brackets: inet:PORT@[ADDRESS]"
        case .invalidHost: "invalid character in host name"
        case .missingPath: "missing socket path"
        case .pathTooLong: "socket path longer than \(Endpoint.maximumSocketPathLength) bytes"
        case .macroNotAllowed: "CLIENT-IP and SERVER-IP cannot be used here"
        }
    }
}
