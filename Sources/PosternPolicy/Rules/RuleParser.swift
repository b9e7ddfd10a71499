import PosternUtil
/// A mistake in a rule, at a byte offset of the joined rule text.
package struct RuleSyntaxError: Error {
    package var offset: Int
    package var message: String
}

/// Recursive-descent parser for one rule (DESIGN.md §4):
/// ```
/// RULE      := CONDITION ("cont" | "stop") [SETTING {"," SETTING}]
/// CONDITION := OR ;  OR := AND {"||" AND} ;  AND := NOT {"&&" NOT} ;  NOT := "!" NOT | ATOM
/// ATOM      := "(" OR ")" | "true" | "false" | TERM
/// ```
/// Terms are in `RuleParser+Term.swift`, settings in `RuleParser+Settings.swift`.
package struct RuleParser {
    /// A setting before validation, with offsets for error positions.
    package struct RawSetting {
        package var name: String
        package var value: String
        package var nameOffset: Int
        package var valueOffset: Int
    }

    /// What a rule line parses to before settings are checked.
    package struct Parsed {
        package var condition: Condition
        package var flow: RuleFlow
        package var settings: [RawSetting]
    }

    package let bytes: [UInt8]
    /// Directory that relative `file:`/`rfile:` paths are relative to.
    package let baseDirectory: String
    package var position = 0

    package init(_ bytes: [UInt8], baseDirectory: String) {
        self.bytes = bytes
        self.baseDirectory = baseDirectory
    }

    package mutating func parseRule() throws(RuleSyntaxError) -> Parsed {
        let condition = try parseOr()
        skipSpaces()
        let start = position
        let word = readName()
        guard let flow = RuleFlow(rawValue: ASCII.lowercased(word)) else {
            let message = word.isEmpty && atEnd ? "expected 'cont' or 'stop' after the condition"
                : "expected '&&', '||', 'cont' or 'stop'"
            throw RuleSyntaxError(offset: start, message: message)
        }
        var settings: [RawSetting] = []
        skipSpaces()
        if !atEnd {
            repeat {
                settings.append(try parseSetting())
                skipSpaces()
            } while consume(",")
            guard atEnd else { throw RuleSyntaxError(offset: position, message: "expected ',' between settings") }
        }
        return Parsed(condition: condition, flow: flow, settings: settings)
    }

    private mutating func parseOr() throws(RuleSyntaxError) -> Condition {
        var parts = [try parseAnd()]
        while true {
            skipSpaces()
            guard consume("||") else { break }
            parts.append(try parseAnd())
        }
        return parts.count == 1 ? parts[0] : .any(parts)
    }

    private mutating func parseAnd() throws(RuleSyntaxError) -> Condition {
        var parts = [try parseNot()]
        while true {
            skipSpaces()
            guard consume("&&") else { break }
            parts.append(try parseNot())
        }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    private mutating func parseNot() throws(RuleSyntaxError) -> Condition {
        skipSpaces()
        if consume("!") { return .not(try parseNot()) }
        return try parseAtom()
    }

    private mutating func parseAtom() throws(RuleSyntaxError) -> Condition {
        skipSpaces()
        guard !atEnd else { throw RuleSyntaxError(offset: position, message: "missing condition") }
        if consume("(") {
            let inner = try parseOr()
            skipSpaces()
            guard consume(")") else { throw RuleSyntaxError(offset: position, message: "expected ')'") }
            return inner
        }
        let start = position
        let name = readName()
        if !name.isEmpty && peek == 0x3A {
            position += 1
            return .term(try parseTerm(name: name, at: start))
        }
        switch ASCII.lowercased(name) {
        case "true": return .constant(true)
        case "false": return .constant(false)
        case "cont", "stop": throw RuleSyntaxError(offset: start, message: "missing condition before '\(name)'")
        case "": throw RuleSyntaxError(offset: start, message: "expected a condition, found '\(Character(Unicode.Scalar(bytes[start])))'")
        default: throw RuleSyntaxError(offset: start, message: "expected NAME:VALUE, 'true' or 'false', found '\(name)'")
        }
    }

    // MARK: Lexing helpers

    package var atEnd: Bool { position >= bytes.count }
    package var peek: UInt8? { atEnd ? nil : bytes[position] }

    package mutating func skipSpaces() {
        while position < bytes.count && ASCII.isSpace(bytes[position]) { position += 1 }
    }

    package mutating func consume(_ token: StaticString) -> Bool {
        let count = token.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        for index in 0..<count where bytes[position + index] != token.utf8Start[index] { return false }
        position += count
        return true
    }

    /// `1*(ALPHA / DIGIT / "-" / "_")`
    package mutating func readName() -> String {
        let start = position
        while position < bytes.count, ASCII.isAlphanumeric(bytes[position]) || bytes[position] == 0x2D || bytes[position] == 0x5F {
            position += 1
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// A quoted string (`\"`, `\\` escapes) at the current position.
    package mutating func readQuoted() throws(RuleSyntaxError) -> String {
        do {
            let (content, next) = try INIValueLexer.unquote(bytes, at: position)
            position = next
            return String(decoding: content, as: UTF8.self)
        } catch {
            throw RuleSyntaxError(offset: error.index, message: error.message)
        }
    }
}
