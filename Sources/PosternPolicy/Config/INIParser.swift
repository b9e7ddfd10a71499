import PosternUtil
/// Splits the configuration text into ``RawSection``s: the Dr.Web MailD INI dialect.
///
/// ```
/// file     = *(line LF)
/// line     = blank / comment / "[" name "]" / key "=" value / rule   ; rule only in [Rules]
/// comment  = *WSP (";" / "#") *CHAR                                  ; also after WSP at line end
/// ```
/// Errors are collected rather than thrown so one pass reports all of them.
package struct INIParser {
    package let file: String
    private(set) var sections: [String: RawSection] = [:]
    private(set) var errors: [ConfigError] = []
    private var current: String?
    private var skipping = false
    private var pending: LogicalLine?

    package static let rulesSection = "rules"

    /// Parses `text`; `initialSection` lets a bare rules file be read without a `[Rules]` header.
    package static func parse(_ text: String, file: String, initialSection: String? = nil) -> INIParser {
        var parser = INIParser(file: file)
        if let initialSection {
            parser.current = ASCII.lowercased(initialSection)
            parser.sections[parser.current!] = RawSection(name: initialSection, line: 0)
        }
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var start = 0
        var number = 0
        while true {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            number += 1
            parser.parseLine(Array(bytes[start..<lineEnd]), number: number)
            if end >= bytes.count { break }
            start = end + 1
        }
        parser.finishRule()
        return parser
    }

    private mutating func parseLine(_ line: [UInt8], number: Int) {
        var index = 0
        while index < line.count && ASCII.isSpace(line[index]) { index += 1 }
        guard index < line.count else { return finishRule() }         // a blank line ends a rule
        if line[index] == 0x3B || line[index] == 0x23 { return }       // comments keep a rule open
        if line[index] == 0x5B {
            finishRule()
            return parseHeader(line, at: index, number: number)
        }
        if skipping { return }
        guard let current else {
            return error(number, line, index, "line outside any section")
        }
        if current == Self.rulesSection {
            parseRuleLine(line, at: index, number: number)
        } else {
            parseKeyLine(line, at: index, number: number)
        }
    }

    private mutating func parseHeader(_ line: [UInt8], at start: Int, number: Int) {
        guard let close = line[start...].firstIndex(of: 0x5D) else {
            skipping = true
            return error(number, line, start, "missing ']' in section header")
        }
        var rest = close + 1
        while rest < line.count && ASCII.isSpace(line[rest]) { rest += 1 }
        if rest < line.count && line[rest] != 0x3B && line[rest] != 0x23 {
            error(number, line, rest, "unexpected text after section header")
        }
        // `[Rule: spam]` and `[Rule:spam]` are the same section.
        let parts = String(decoding: line[(start + 1)..<close], as: UTF8.self)
            .split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            .map { ASCII.trim($0) }
        let name = parts.joined(separator: ":")
        guard !parts[0].isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
            skipping = true
            return error(number, line, start, "empty section name")
        }
        let key = ASCII.lowercased(name)
        if sections[key] == nil { sections[key] = RawSection(name: name, line: number) }
        current = key
        skipping = false
    }

    private mutating func parseKeyLine(_ line: [UInt8], at start: Int, number: Int) {
        var index = start
        while index < line.count && line[index] != 0x3D && !ASCII.isSpace(line[index]) {
            guard Self.isKeyByte(line[index]) else {
                return error(number, line, index, "invalid character in key name")
            }
            index += 1
        }
        let key = String(decoding: line[start..<index], as: UTF8.self)
        while index < line.count && ASCII.isSpace(line[index]) { index += 1 }
        guard index < line.count && line[index] == 0x3D else {
            return error(number, line, index, "expected '=' after key '\(key)'")
        }
        guard !key.isEmpty else { return error(number, line, start, "missing key name before '='") }
        do {
            let lexed = try INIValueLexer.lex(line, from: index + 1)
            let items = lexed.items.map {
                RawItem(text: $0.text, line: number, column: ASCII.column(in: line, at: $0.start), isMissing: $0.missing)
            }
            var sourceStart = index + 1
            while sourceStart < line.count && ASCII.isSpace(line[sourceStart]) { sourceStart += 1 }
            let sourceEnd = max(sourceStart, INIValueLexer.contentEnd(line, from: index + 1))
            sections[current!]!.append(RawValue(
                key: key, line: number, keyColumn: ASCII.column(in: line, at: start),
                column: ASCII.column(in: line, at: lexed.start), text: lexed.text, items: items,
                source: String(decoding: line[sourceStart..<sourceEnd], as: UTF8.self)))
        } catch {
            self.error(number, line, error.index, error.message)
        }
    }

    private mutating func parseRuleLine(_ line: [UInt8], at start: Int, number: Int) {
        var end = INIValueLexer.contentEnd(line, from: start)
        var continues = false
        if end > start && line[end - 1] == 0x5C {
            continues = true
            end -= 1
            while end > start && ASCII.isSpace(line[end - 1]) { end -= 1 }
        }
        if pending == nil { pending = LogicalLine() }
        pending!.append(line, start..<end, line: number)
        if !continues { finishRule() }
    }

    private mutating func finishRule() {
        guard let rule = pending else { return }
        pending = nil
        if !rule.bytes.isEmpty { sections[Self.rulesSection]?.ruleLines.append(rule) }
    }

    private mutating func error(_ number: Int, _ line: [UInt8], _ index: Int, _ message: String) {
        errors.append(ConfigError(file: file, line: number, column: ASCII.column(in: line, at: index), message: message))
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        ASCII.isAlphanumeric(byte) || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x2F
    }
}
