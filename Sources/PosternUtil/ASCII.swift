/// ASCII-only case folding and comparison.
///
/// Mail names (domains, header field names, keywords) are ASCII; folding only ASCII keeps the
/// comparisons locale-independent and lets the hot path compare without allocating.
package enum ASCII {
    @inline(__always)
    package static func lower(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }

    @inline(__always)
    package static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    @inline(__always)
    package static func isDigit(_ byte: UInt8) -> Bool {
        byte >= 0x30 && byte <= 0x39
    }

    @inline(__always)
    package static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || (lower(byte) >= 0x61 && lower(byte) <= 0x7A)
    }

    /// Replaces every byte `bad` picks with `replacement`; returns `text` itself (no copy) when
    /// there is none. For text that must stay one line (logs, spool lines, replies, headers).
    package static func replacing(_ text: String, where bad: (UInt8) -> Bool, with replacement: UInt8) -> String {
        guard text.utf8.contains(where: bad) else { return text }
        return String(decoding: text.utf8.map { bad($0) ? replacement : $0 }, as: UTF8.self)
    }

    /// C0 controls: CR, LF, NUL and the rest below space.
    @inline(__always)
    package static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 }

    /// Lower-cases ASCII letters; returns `text` itself (no copy) when it has none.
    package static func lowercased(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return text }
        return String(decoding: text.utf8.map(lower), as: UTF8.self)
    }

    /// Upper-cases ASCII letters (Crockford base-32 tokens are read without case).
    package static func uppercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
    }

    /// Compares `bytes` case-insensitively with `lowered`, which the caller folded in advance.
    @inline(__always)
    package static func equal<A: Sequence, B: Sequence>(_ bytes: A, lowered: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        var left = bytes.makeIterator()
        var right = lowered.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case let (a?, b?) where lower(a) == b: continue
            default: return false
            }
        }
    }

    /// Case-insensitive string equality against an already lower-cased string.
    @inline(__always)
    package static func equal(_ text: String, lowered: String) -> Bool {
        text.utf8.count == lowered.utf8.count && equal(text.utf8, lowered: lowered.utf8)
    }

    /// Drops leading and trailing spaces and tabs.
    package static func trim(_ text: some StringProtocol) -> String {
        let utf8 = Array(text.utf8)
        guard let first = utf8.firstIndex(where: { !isSpace($0) }),
              let last = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: utf8[first...last], as: UTF8.self)
    }

    /// Column (1-based, in Unicode scalars) of byte `index` within a line.
    package static func column(in line: [UInt8], at index: Int) -> Int {
        var column = 1
        for position in 0..<min(index, line.count) where line[position] & 0xC0 != 0x80 {
            column += 1
        }
        return column
    }
}
