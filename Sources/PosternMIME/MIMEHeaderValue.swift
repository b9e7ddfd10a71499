import PosternUtil
/// A structured header value, `token *(";" parameter)`, with RFC 2231 continuations and
/// charsets undone. Plain values are left as sent: RFC 2047 words are for the caller to decode
/// where they make sense (names, not boundaries).
/// - SeeAlso: RFC 2045 §5.1, RFC 2183 §2, RFC 2231 §3–4
public struct MIMEHeaderValue: Sendable, Hashable {
    /// The leading token, lower-cased, without white space and comments: `multipart/mixed`.
    public var value: String
    /// Parameter values by lower-cased attribute; an RFC 2231 form wins over a plain one.
    public var parameters: [String: String]
    /// Plain values that an RFC 2231 form of the same attribute shadowed: clients differ on which they show.
    public var shadowed: [String: String]

    /// The preferred value of `attribute`, then the shadowed one if it differs.
    public func values(of attribute: String) -> [String] {
        var out: [String] = []
        if let value = parameters[attribute] { out.append(value) }
        if let value = shadowed[attribute], value != out.first { out.append(value) }
        return out
    }

    /// One `attribute=value` as written; `attribute*N*` gives a section and the extended flag.
    package struct RawParameter {
        package var name: String
        package var section: Int?
        package var extended: Bool
        package var value: [UInt8]
    }

    /// content := token *(";" attribute "=" value); value := token / quoted-string (RFC 2045 §5.1);
    /// attribute [ "*" section ] [ "*" ] (RFC 2231 §3–4). Tolerant: a value runs to the next `;`,
    /// junk after a closing quote is dropped, a parameter without `=` is skipped.
    public static func parse(_ input: some Collection<UInt8>) -> MIMEHeaderValue {
        let s = Array(input)
        var i = 0
        var token: [UInt8] = []
        while i < s.count, s[i] != 0x3B {
            if s[i] == 0x28 { i = skipComment(s, from: i); continue }
            if s[i] > 0x20 { token.append(ASCII.lower(s[i])) }
            i += 1
        }
        var raw: [RawParameter] = []
        while i < s.count {
            i += 1
            while i < s.count, ASCII.isSpace(s[i]) { i += 1 }
            let nameStart = i
            while i < s.count, s[i] != 0x3D, s[i] != 0x3B { i += 1 }
            guard i < s.count, s[i] == 0x3D else { continue }
            let name = s[nameStart..<i].filter { $0 > 0x20 }.map(ASCII.lower)
            i += 1
            while i < s.count, ASCII.isSpace(s[i]) { i += 1 }
            var value: [UInt8] = []
            if i < s.count, s[i] == 0x22 {
                i += 1
                while i < s.count, s[i] != 0x22 {
                    if s[i] == 0x5C, i + 1 < s.count { i += 1 }
                    value.append(s[i]); i += 1
                }
                while i < s.count, s[i] != 0x3B { i += 1 }
            } else {
                let valueStart = i
                while i < s.count, s[i] != 0x3B { i += 1 }
                var end = i
                while end > valueStart, ASCII.isSpace(s[end - 1]) { end -= 1 }
                value = Array(s[valueStart..<end])
            }
            if !name.isEmpty { raw.append(rawParameter(name, value)) }
        }
        var result = MIMEHeaderValue(value: String(decoding: token, as: UTF8.self), parameters: [:], shadowed: [:])
        result.combine(raw)
        return result
    }

    /// comment := "(" *(ctext / quoted-pair / comment) ")" (RFC 5322 §3.2.2)
    package static func skipComment(_ s: [UInt8], from start: Int) -> Int {
        var depth = 0
        var i = start
        while i < s.count {
            switch s[i] {
            case 0x5C: i += 1
            case 0x28: depth += 1
            case 0x29: depth -= 1; if depth == 0 { return i + 1 }
            default: break
            }
            i += 1
        }
        return s.count
    }

    package static func rawParameter(_ name: [UInt8], _ value: [UInt8]) -> RawParameter {
        var name = name[...]
        let extended = name.last == 0x2A && name.count > 1
        if extended { name = name.dropLast() }
        var section: Int?
        if let star = name.lastIndex(of: 0x2A), star > name.startIndex {
            let digits = name[(star + 1)...]
            if (1...4).contains(digits.count), digits.allSatisfy(ASCII.isDigit) {
                section = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                name = name[..<star]
            }
        }
        return RawParameter(name: String(decoding: name, as: UTF8.self), section: section, extended: extended, value: value)
    }
}
