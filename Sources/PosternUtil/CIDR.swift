/// An IP network: `10.0.0.0/8`, `::1/128`, `[::1]/128`, or a single host `127.0.0.1`.
///
/// Host bits set in the address (`10.1.2.3/8`) are masked off rather than refused, as Postfix's
/// `mynetworks` does, and `description` shows the network actually matched.
/// - SeeAlso: RFC 4632 §3.1
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network address, host bits cleared.
    public var network: IPAddress
    /// The prefix length in the network's own family (0–32 for IPv4, 0–128 for IPv6).
    public var prefixLength: Int
    private var maskHigh: UInt64
    private var maskLow: UInt64

    /// Parses `ADDRESS[/PREFIX]`; IPv6 may be bracketed. Returns nil on any syntax error.
    public init?(_ text: String) {
        var addressText = Substring(text)
        var prefix: Int?
        if let slash = text.lastIndex(of: "/") {
            addressText = text[..<slash]
            let digits = text[text.index(after: slash)...]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy(ASCII.isDigit),
                  let value = Int(digits) else { return nil }
            prefix = value
        }
        guard let address = IPAddress(String(addressText)) else { return nil }
        // Mapped IPv4 lives in the last 32 bits of the 128, so 10.0.0.0/8 is /104 inside, and
        // ::ffff:0:0/96 written in IPv6 is the same network as 0.0.0.0/0.
        let bits: Int
        if addressText.contains(":") {
            bits = prefix ?? 128
            guard bits <= 128 else { return nil }
            prefixLength = address.isIPv4 && bits >= 96 ? bits - 96 : bits
        } else {
            guard (prefix ?? 32) <= 32 else { return nil }
            bits = (prefix ?? 32) + 96
            prefixLength = prefix ?? 32
        }
        maskHigh = bits >= 64 ? .max : (bits == 0 ? 0 : .max << UInt64(64 - bits))
        maskLow = bits <= 64 ? 0 : (bits == 128 ? .max : .max << UInt64(128 - bits))
        network = IPAddress(high: address.high & maskHigh, low: address.low & maskLow)
    }

    /// Whether the network contains `address`.
    public func contains(_ address: IPAddress) -> Bool {
        address.high & maskHigh == network.high && address.low & maskLow == network.low
    }

    /// Whether the network contains the textual address; false when `ip` is not an address.
    public func contains(_ ip: String) -> Bool {
        guard let address = IPAddress(ip) else { return false }
        return contains(address)
    }

    /// `network/prefix`, IPv6 without brackets.
    public var description: String { "\(network)/\(prefixLength)" }
}
