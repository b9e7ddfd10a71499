import PosternUtil
/// Undoes the two content transfer encodings, as tolerantly as mail readers do.
///
/// Both stop once `limit` bytes are out, so a caller that wants a file's magic number decodes
/// only the first few bytes of a large part.
/// - SeeAlso: RFC 2045 §6.7 (quoted-printable), §6.8 (base64)
public enum TransferDecoding {
    /// base64: characters outside the alphabet (line breaks, spaces, junk) are skipped, and `=`
    /// ends a quantum, so a body made of several padded encodings decodes whole.
    public static func base64(_ input: ArraySlice<UInt8>, limit: Int = .max) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(limit, input.count / 4 * 3 + 3))
        var acc: UInt32 = 0
        var count = 0
        input.withUnsafeBufferPointer { buffer in
            for byte in buffer {
                let value = sextet(byte)
                if value < 64 {
                    acc = acc << 6 | UInt32(value)
                    count += 1
                    guard count == 4 else { continue }
                    out.append(UInt8(truncatingIfNeeded: acc >> 16))
                    out.append(UInt8(truncatingIfNeeded: acc >> 8))
                    out.append(UInt8(truncatingIfNeeded: acc))
                    acc = 0; count = 0
                    if out.count >= limit { break }
                } else if value == padding {
                    flush(&acc, &count, into: &out)
                }
            }
        }
        flush(&acc, &count, into: &out)
        if out.count > limit { out.removeLast(out.count - limit) }
        return out
    }

    public static func base64(_ input: [UInt8], limit: Int = .max) -> [UInt8] {
        base64(input[...], limit: limit)
    }

    /// quoted-printable: `=XX` is a byte, `=` at a line end a soft break, trailing white space
    /// is transport padding (rule 3); a bad escape is kept as it is (§6.7, note 1).
    public static func quotedPrintable(_ input: ArraySlice<UInt8>, limit: Int = .max) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(limit, input.count))
        input.withUnsafeBufferPointer { s in
            var i = 0
            while i < s.count, out.count < limit {
                var newline = i
                while newline < s.count, s[newline] != 0x0A { newline += 1 }
                var end = newline
                let crlf = end > i && s[end - 1] == 0x0D
                if crlf { end -= 1 }
                while end > i, ASCII.isSpace(s[end - 1]) { end -= 1 }
                let soft = end > i && s[end - 1] == 0x3D
                if soft { end -= 1 }
                var j = i
                while j < end {
                    if s[j] == 0x3D, j + 2 < end, let high = Charset.hexValue(s[j + 1]), let low = Charset.hexValue(s[j + 2]) {
                        out.append(high << 4 | low); j += 3
                    } else {
                        out.append(s[j]); j += 1
                    }
                }
                if newline < s.count, !soft {
                    if crlf { out.append(0x0D) }
                    out.append(0x0A)
                }
                i = newline + 1
            }
        }
        if out.count > limit { out.removeLast(out.count - limit) }
        return out
    }

    public static func quotedPrintable(_ input: [UInt8], limit: Int = .max) -> [UInt8] {
        quotedPrintable(input[...], limit: limit)
    }

    private static let padding: UInt8 = 0xFE

    @inline(__always)
    private static func sextet(_ byte: UInt8) -> UInt8 {
        switch byte {
        case 0x41...0x5A: byte - 0x41
        case 0x61...0x7A: byte - 0x47
        case 0x30...0x39: byte + 4
        case 0x2B: 62
        case 0x2F: 63
        case 0x3D: padding
        default: 0xFF
        }
    }

    /// A partial quantum: two sextets carry one byte, three carry two; one carries nothing.
    @inline(__always)
    private static func flush(_ acc: inout UInt32, _ count: inout Int, into out: inout [UInt8]) {
        if count == 2 {
            out.append(UInt8(truncatingIfNeeded: acc >> 4))
        } else if count == 3 {
            out.append(UInt8(truncatingIfNeeded: acc >> 10))
            out.append(UInt8(truncatingIfNeeded: acc >> 2))
        }
        acc = 0; count = 0
    }
}
