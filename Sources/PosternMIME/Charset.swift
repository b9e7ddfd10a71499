/// Turns bytes in a declared charset into a String for name checks.
///
/// XXX: only UTF-8 and US-ASCII are decoded as such (bad sequences become U+FFFD); every other
/// charset is read byte for byte as ISO-8859-1. Letters may come out wrong, but the extensions
/// that bans look at are ASCII in every ASCII-compatible charset mail uses.
package enum Charset {
    package static func decode(_ bytes: some Collection<UInt8>, charset: String) -> String {
        switch charset.lowercased() {
        case "", "utf-8", "utf8", "us-ascii", "ascii":
            return String(decoding: bytes, as: UTF8.self)
        default:
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
            return String(scalars)
        }
    }

    /// hex-octet := "%" 2HEXDIG (RFC 2231 §4, RFC 3986 §2.1); a bad escape stays as it is.
    package static func percentDecode(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let s = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == 0x25, i + 2 < s.count, let high = hexValue(s[i + 1]), let low = hexValue(s[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    @inline(__always)
    package static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x37
        case 0x61...0x66: byte - 0x57
        default: nil
        }
    }
}
