extension TransferEncoding {
    private static let hex = Array("0123456789ABCDEF".utf8)

    /// quoted-printable for text (RFC 2045 §6.7): CRLF stays a hard line break; `=`, controls,
    /// octets above 126, a bare CR or LF, and white space before a line end are `=XX`; lines
    /// longer than ``EightBitDefaults/maxEncodedLine`` get soft breaks, never inside an `=XX`.
    ///
    /// A line that starts after a soft break never starts with `-`: the original text did not
    /// hold a delimiter there, and splitting must not make one (RFC 2046 §5.1.1).
    public static func quotedPrintable(_ input: ArraySlice<UInt8>, into out: inout [UInt8]) {
        let maxLine = EightBitDefaults.maxEncodedLine
        out.reserveCapacity(out.count + input.count + input.count / 8)
        input.withUnsafeBufferPointer { s in
            let n = s.count
            var length = 0          // characters on the output line so far
            var continued = false   // the output line began at a soft break
            var i = 0
            while i < n {
                let byte = s[i]
                if byte == 0x0D, i + 1 < n, s[i + 1] == 0x0A {
                    out.append(0x0D); out.append(0x0A)
                    length = 0; continued = false
                    i += 2
                    continue
                }
                let lineEnd = i + 1 == n || (s[i + 1] == 0x0D && i + 2 < n && s[i + 2] == 0x0A)
                var literal: Bool
                switch byte {
                case 0x21...0x3C, 0x3E...0x7E: literal = true
                case 0x20, 0x09: literal = !lineEnd   // rule 3: no white space before a line break
                default: literal = false
                }
                // The last character of a line may take the 76th column; the others leave it
                // for the soft break's "=".
                if length + (literal ? 1 : 3) > (lineEnd ? maxLine : maxLine - 1) {
                    out.append(0x3D); out.append(0x0D); out.append(0x0A)
                    length = 0; continued = true
                }
                if byte == 0x2D, length == 0, continued { literal = false }
                if literal {
                    out.append(byte)
                    length += 1
                } else {
                    out.append(0x3D)
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0x0F)])
                    length += 3
                }
                i += 1
            }
        }
    }
}
