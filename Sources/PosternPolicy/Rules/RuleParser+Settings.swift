import PosternUtil
extension RuleParser {
    /// ```
    /// SETTING := PARAM "=" VALUE | "rule=" GROUP
    /// PARAM   := NAME | PLUGIN "/" NAME
    /// VALUE   := DQUOTE … DQUOTE | text up to a "," outside parentheses, trimmed
    /// ```
    package mutating func parseSetting() throws(RuleSyntaxError) -> RawSetting {
        skipSpaces()
        let nameStart = position
        while let byte = peek, ASCII.isAlphanumeric(byte) || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x2F {
            position += 1
        }
        let name = String(decoding: bytes[nameStart..<position], as: UTF8.self)
        guard !name.isEmpty else {
            throw RuleSyntaxError(offset: position, message: "expected PARAMETER = VALUE (quote values that contain commas)")
        }
        skipSpaces()
        guard consume("=") else { throw RuleSyntaxError(offset: position, message: "expected '=' after '\(name)'") }
        skipSpaces()
        let valueStart = position
        if peek == 0x22 {
            let value = try readQuoted()
            return RawSetting(name: name, value: value, nameOffset: nameStart, valueOffset: valueStart + 1)
        }
        var depth = 0
        while let byte = peek {
            if byte == 0x28 { depth += 1 }
            if byte == 0x29 { depth = max(0, depth - 1) }
            if byte == 0x2C && depth == 0 { break }
            position += 1
        }
        var end = position
        while end > valueStart && ASCII.isSpace(bytes[end - 1]) { end -= 1 }
        guard end > valueStart else {
            throw RuleSyntaxError(offset: valueStart, message: "missing value for '\(name)' (write \"\" for an empty one)")
        }
        return RawSetting(name: name, value: String(decoding: bytes[valueStart..<end], as: UTF8.self),
                          nameOffset: nameStart, valueOffset: valueStart)
    }
}
