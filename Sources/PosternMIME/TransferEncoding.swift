/// The two content transfer encodings that carry 8-bit data over 7-bit SMTP; the inverse of
/// ``TransferDecoding``. Output lines end CRLF and the last one has none: the line break
/// before a delimiter, or at the end of the message, is not the part's.
/// - SeeAlso: RFC 2045 §6.7 (quoted-printable), §6.8 (base64)
public enum TransferEncoding: String, Sendable, Hashable {
    case quotedPrintable = "quoted-printable"
    case base64

    /// The `Content-Transfer-Encoding` token.
    public var token: String { rawValue }

    /// Appends `input` in this encoding to `out`.
    public func encode(_ input: ArraySlice<UInt8>, into out: inout [UInt8]) {
        switch self {
        case .quotedPrintable: Self.quotedPrintable(input, into: &out)
        case .base64: Self.base64(input, into: &out)
        }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// base64 in lines of ``EightBitDefaults/maxEncodedLine`` characters.
    public static func base64(_ input: ArraySlice<UInt8>, into out: inout [UInt8]) {
        let quantaPerLine = EightBitDefaults.maxEncodedLine / 4
        out.reserveCapacity(out.count + (input.count + 2) / 3 * 4 + input.count / 57 * 2 + 2)
        input.withUnsafeBufferPointer { s in
            var i = 0
            var quanta = 0
            while i < s.count {
                if quanta == quantaPerLine {
                    out.append(0x0D); out.append(0x0A)
                    quanta = 0
                }
                let left = s.count - i
                let b0 = UInt32(s[i])
                let b1 = left > 1 ? UInt32(s[i + 1]) : 0
                let b2 = left > 2 ? UInt32(s[i + 2]) : 0
                let v = b0 << 16 | b1 << 8 | b2
                out.append(alphabet[Int(v >> 18 & 63)])
                out.append(alphabet[Int(v >> 12 & 63)])
                out.append(left > 1 ? alphabet[Int(v >> 6 & 63)] : 0x3D)
                out.append(left > 2 ? alphabet[Int(v & 63)] : 0x3D)
                i += 3
                quanta += 1
            }
        }
    }
}
