import Glibc

/// An IPv4 or IPv6 address as 128 bits.
///
/// IPv4 is held IPv4-mapped (`::ffff:a.b.c.d`), so a client that reached a dual-stack socket as
/// `::ffff:192.0.2.7` and one that arrived over IPv4 compare equal, and one masking serves both.
/// - SeeAlso: RFC 4291 §2.5.5.2
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The upper 64 bits, network byte order.
    public var high: UInt64
    /// The lower 64 bits, network byte order.
    public var low: UInt64

    /// Builds an address from its two 64-bit halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses `192.0.2.7`, `2001:db8::1`, `[2001:db8::1]` or `fe80::1%eth0` (the zone is dropped).
    public init?(_ text: String) {
        // inet_pton reads a C string: it would stop at a NUL and take what comes before it.
        guard !text.utf8.contains(0) else { return nil }
        if text.utf8.contains(where: { $0 == 0x5B || $0 == 0x25 }) {
            var trimmed = Substring(text)
            if trimmed.hasPrefix("[") && trimmed.hasSuffix("]") {
                trimmed = trimmed.dropFirst().dropLast()
            }
            if let zone = trimmed.firstIndex(of: "%") { trimmed = trimmed[..<zone] }
            self.init(parsing: String(trimmed))
        } else {
            self.init(parsing: text)
        }
    }

    private init?(parsing text: String) {
        if text.utf8.contains(0x3A) {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            withUnsafeBytes(of: &address) { raw in
                for index in 0..<8 { high = high << 8 | UInt64(raw[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(raw[index]) }
            }
            self.init(high: high, low: low)
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(UInt32(bigEndian: address.s_addr)))
        }
    }

    /// True for IPv4 addresses, including IPv4-mapped IPv6 ones.
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// Dotted quad for IPv4 (also when it was written IPv4-mapped), RFC 5952 text for IPv6.
    public var description: String {
        if isIPv4 {
            let value = UInt32(truncatingIfNeeded: low)
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { raw in
            for index in 0..<8 { raw[index] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * index)) }
            for index in 0..<8 { raw[8 + index] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * index)) }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return "::" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
