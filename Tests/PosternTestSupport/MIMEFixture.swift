
/// Messages for the 8-bit conversion tests, written as text.
package enum MIMEFixture {
    /// `text` with LF turned into CRLF and each Unicode scalar up to U+00FF as one octet, so
    /// that "caf\u{E9}" is ISO-8859-1. Scalars above U+00FF are written in UTF-8.
    package static func latin1(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in text.unicodeScalars {
            if scalar == "\n" { out += [0x0D, 0x0A] } else if scalar.value < 0x100 { out.append(UInt8(scalar.value)) } else { out += Array(String(scalar).utf8) }
        }
        return out
    }

    /// `text` in UTF-8 with LF turned into CRLF.
    package static func utf8(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for byte in text.utf8 {
            if byte == 0x0A { out.append(0x0D) }
            out.append(byte)
        }
        return out
    }

    package static func isSevenBit(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 < 0x80 } }

    /// The lines of `bytes`, CRLF or LF split, without the line ends.
    package static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { $0.last == 0x0D ? $0.dropLast() : $0 }
    }

    /// The first occurrence of `needle` in `haystack`.
    package static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}
