import PosternUtil
/// RFC 2047 encoded words (`=?charset?B|Q?text?=`) in header text.
///
/// Also applied to quoted parameter values: §5 forbids them there, but Outlook and Gmail put
/// file names so, and every client decodes them.
/// - SeeAlso: RFC 2047 §2–6, RFC 2231 §5 (the `*language` suffix)
public enum EncodedWord {
    /// Decodes every encoded word in `text`. White space between adjacent words is dropped (§6.2),
    /// and adjacent words in one charset are joined before decoding, so that a character split
    /// across two words survives.
    /// `text` as UTF-8 `B` words of at most 75 octets each (§2), folded onto lines of their
    /// own; ASCII text is returned as it is.
    public static func encode(_ text: String) -> String {
        guard !text.utf8.allSatisfy({ $0 < 0x80 }) else { return text }
        // 45 octets make 60 of base64: with `=?utf-8?B?` and `?=` a word is 72 octets.
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let octets = Array(String(scalar).utf8)
            if chunk.count + octets.count > 45 {
                words.append("=?utf-8?B?" + Base64.encode(chunk) + "?=")
                chunk = []
            }
            chunk += octets
        }
        if !chunk.isEmpty { words.append("=?utf-8?B?" + Base64.encode(chunk) + "?=") }
        return words.joined(separator: "\r\n ")
    }

    public static func decode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count >= 8, hasMarker(bytes) else { return text }
        var out = ""
        var pending: [UInt8] = []
        var pendingCharset = ""
        var literalStart = 0
        var afterWord = false
        var i = 0
        while i + 1 < bytes.count {
            guard bytes[i] == 0x3D, bytes[i + 1] == 0x3F, let word = parseWord(bytes, at: i) else { i += 1; continue }
            let gap = bytes[literalStart..<i]
            if !afterWord || !gap.allSatisfy(ASCII.isSpace) {
                out += Charset.decode(pending, charset: pendingCharset); pending = []
                out += String(decoding: gap, as: UTF8.self)
            }
            if word.charset != pendingCharset {
                out += Charset.decode(pending, charset: pendingCharset); pending = []
            }
            pendingCharset = word.charset
            pending += word.bytes
            i = word.end
            literalStart = i
            afterWord = true
        }
        out += Charset.decode(pending, charset: pendingCharset)
        out += String(decoding: bytes[literalStart...], as: UTF8.self)
        return out
    }

    private static func hasMarker(_ bytes: [UInt8]) -> Bool {
        for i in 0..<(bytes.count - 1) where bytes[i] == 0x3D && bytes[i + 1] == 0x3F { return true }
        return false
    }

    /// encoded-word := "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
    ///
    /// Every step stops at the next `?`, which no charset or encoded text may hold, so failed
    /// attempts cannot make decoding quadratic.
    package static func parseWord(_ s: [UInt8], at start: Int) -> (charset: String, bytes: [UInt8], end: Int)? {
        var j = start + 2
        while j < s.count, s[j] != 0x3F {
            if ASCII.isSpace(s[j]) { return nil }
            j += 1
        }
        guard j + 2 < s.count, s[j + 2] == 0x3F else { return nil }
        let encoding = ASCII.lower(s[j + 1])
        guard encoding == 0x62 || encoding == 0x71 else { return nil }
        let textStart = j + 3
        var k = textStart
        while k < s.count, s[k] != 0x3F { k += 1 }
        guard k + 1 < s.count, s[k + 1] == 0x3D else { return nil }
        var charset = s[(start + 2)..<j]
        if let star = charset.firstIndex(of: 0x2A) { charset = charset[..<star] }
        let text = s[textStart..<k]
        let bytes = encoding == 0x62 ? TransferDecoding.base64(text) : qDecode(text)
        return (String(decoding: charset.map(ASCII.lower), as: UTF8.self), bytes, k + 2)
    }

    /// Q encoding (§4.2): `_` is a space, `=XX` a byte, anything else itself.
    package static func qDecode(_ text: ArraySlice<UInt8>) -> [UInt8] {
        let s = Array(text)
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if s[i] == 0x5F {
                out.append(0x20); i += 1
            } else if s[i] == 0x3D, i + 2 < s.count, let high = Charset.hexValue(s[i + 1]), let low = Charset.hexValue(s[i + 2]) {
                out.append(high << 4 | low); i += 3
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }
}
