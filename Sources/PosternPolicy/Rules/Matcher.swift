import PosternUtil
/// A compiled lookup: everything is lower-cased, compiled or parsed at load time so matching
/// allocates nothing in the common cases.
package enum Matcher: Sendable {
    /// Whole value, case-insensitive.
    case exact(String)
    /// The part after the last `@` (`from:@example.com`).
    case domain(String)
    /// A `file:` list of values and `@domain`s.
    case list(exact: Set<String>, domains: Set<String>)
    /// `regex:` or `rfile:`: any pattern matching anywhere.
    case regexes([POSIXRegex])
    /// An address in any of the networks.
    case networks([CIDR])

    package func matches(_ value: String) -> Bool {
        switch self {
        case .exact(let lowered):
            return ASCII.equal(value, lowered: lowered)
        case .domain(let lowered):
            let utf8 = value.utf8
            guard let at = utf8.lastIndex(of: 0x40) else { return false }
            return ASCII.equal(utf8[utf8.index(after: at)...], lowered: lowered.utf8)
        case .list(let exact, let domains):
            let lowered = ASCII.lowercased(value)
            if exact.contains(lowered) { return true }
            guard !domains.isEmpty, let at = lowered.lastIndex(of: "@") else { return false }
            return domains.contains(String(lowered[lowered.index(after: at)...]))
        case .regexes(let patterns):
            return patterns.contains { $0.matches(value) }
        case .networks(let networks):
            guard let address = IPAddress(value) else { return false }
            return networks.contains { $0.contains(address) }
        }
    }
}
