import PosternUtil
/// Which next hops an `[Sender] AuthFile` line or an `AuthWithoutTLS` item is for.
///
/// ```
/// match = endpoint                 ; inet:587@smtp.example.net, lmtp:inet:24@10.0.0.5, local:/path
///       / "[" host "]" [":" port]  ; Postfix's sasl_passwd form: [smtp.example.net]:587
///       / host                     ; any port of that host: smtp.example.net, 192.0.2.7, [2001:db8::1]
/// ```
/// The protocol prefix of an endpoint is ignored: credentials belong to a server, not to SMTP or LMTP.
public enum NextHopMatch: Sendable, Hashable, CustomStringConvertible {
    /// One host and port, or one socket.
    case location(Endpoint.Location)
    /// Every port of one host (lower-cased; IPv6 without brackets).
    case host(String)

    /// Parses one key; the error's offset is into `text`.
    public static func parse(_ text: String) throws(EndpointError) -> NextHopMatch {
        let lowered = ASCII.lowercased(text)
        if ["inet:", "local:", "unix:", "smtp:", "lmtp:"].contains(where: { lowered.hasPrefix($0) }) {
            let endpoint = try Endpoint.parse(text)
            guard !endpoint.hasMacros else {
                let at = text.utf8.lastIndex(of: UInt8(ascii: "@")).map { text.utf8.distance(from: text.utf8.startIndex, to: $0) + 1 } ?? 0
                throw EndpointError(.macroNotAllowed, offset: at)
            }
            return .location(normalized(endpoint.location))
        }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let inner = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            let host = inner.contains(":") ? "[\(inner)]" : inner
            if after.isEmpty { return .host(try hostOnly(host)) }
            guard after.hasPrefix(":") else { throw EndpointError(.invalidPort, offset: text.utf8.distance(from: text.utf8.startIndex, to: close) + 1) }
            let endpoint: Endpoint
            do throws(EndpointError) {
                endpoint = try Endpoint.parse("inet:\(after.dropFirst())@\(host)")
            } catch {
                throw EndpointError(error.reason, offset: 0)
            }
            return .location(normalized(endpoint.location))
        }
        return .host(try hostOnly(text))
    }

    /// Whether `endpoint` (macros already substituted) is one this matches.
    public func matches(_ endpoint: Endpoint) -> Bool {
        let location = NextHopMatch.normalized(endpoint.location)
        switch self {
        case .location(let l): return l == location
        case .host(let h):
            if case .inet(let host, _) = location { return host == h }
            return false
        }
    }

    public var description: String {
        switch self {
        case .location(let l): return Endpoint(location: l).description
        case .host(let h): return h.contains(":") ? "[\(h)]" : h
        }
    }

    private static func hostOnly(_ text: String) throws(EndpointError) -> String {
        do throws(EndpointError) {
            guard case .inet(let host, _) = try Endpoint.parse("inet:25@" + text).location,
                  host != Endpoint.clientIPMacro && host != Endpoint.serverIPMacro
            else { throw EndpointError(.macroNotAllowed, offset: "inet:25@".utf8.count) }
            return ASCII.lowercased(host)
        } catch {
            throw EndpointError(error.reason, offset: max(0, error.offset - "inet:25@".utf8.count))
        }
    }

    private static func normalized(_ location: Endpoint.Location) -> Endpoint.Location {
        if case .inet(let host, let port) = location { return .inet(host: ASCII.lowercased(host), port: port) }
        return location
    }
}
