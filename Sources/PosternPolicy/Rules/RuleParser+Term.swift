import PosternUtil
extension RuleParser {
    /// ```
    /// TERM   := NAME ":" LOOKUP  |  "header:" FIELD ":" LOOKUP  |  NUMERIC ":" [OP] NUMBER
    /// LOOKUP := ["value:" | "regex:" | "file:" | "rfile:" | "cidr:"] VALUE
    /// VALUE  := DQUOTE … DQUOTE | 1*(any but WSP, "&&", "||", unbalanced ")")
    /// ```
    package mutating func parseTerm(name: String, at start: Int) throws(RuleSyntaxError) -> Term {
        guard var kind = Term.Kind(name: ASCII.lowercased(name)) else {
            throw RuleSyntaxError(offset: start, message: "unknown term '\(name):'")
        }
        if case .header = kind {
            let fieldStart = position
            while let byte = peek, byte > 0x20, byte < 0x7F, byte != 0x3A { position += 1 }
            guard position > fieldStart, consume(":") else {
                throw RuleSyntaxError(offset: position, message: "expected header:NAME:VALUE")
            }
            kind = .header(ASCII.lowercased(String(decoding: bytes[fieldStart..<(position - 1)], as: UTF8.self)))
        }
        guard let next = peek, !ASCII.isSpace(next) else {
            throw RuleSyntaxError(offset: position, message: "missing value after '\(name):' (no space is allowed after ':')")
        }
        if kind.valueClass == .number { return Term(kind: kind, test: .compare(try parseComparison(kind))) }
        return Term(kind: kind, test: .lookup(try parseLookup(kind, termStart: start)))
    }

    private mutating func parseComparison(_ kind: Term.Kind) throws(RuleSyntaxError) -> Comparison {
        var op = Comparison.Operator.equal
        for candidate in Comparison.Operator.allCases {
            let token = Array(candidate.rawValue.utf8)
            if bytes[position...].starts(with: token) {
                op = candidate
                position += token.count
                break
            }
        }
        let start = position
        let (text, quoted) = try readValue()
        let number: Double?
        switch kind {
        case .size: number = ValueSyntax.parseSize(text).map(Double.init)
        case .clientPort: number = Int(text).flatMap { (0...65535).contains($0) ? Double($0) : nil }
        default: number = Double(text).flatMap { $0.isFinite ? $0 : nil }
        }
        guard let number else {
            let expected = kind == .size ? "a size such as 10m" : kind == .clientPort ? "a port number" : "a number"
            throw RuleSyntaxError(offset: start + (quoted ? 1 : 0), message: "invalid value '\(text)': expected \(expected)")
        }
        return Comparison(op: op, value: number)
    }

    private mutating func parseLookup(_ kind: Term.Kind, termStart: Int) throws(RuleSyntaxError) -> Matcher {
        var prefix = ""
        for candidate in ["value:", "regex:", "file:", "rfile:", "cidr:"] {
            let token = Array(candidate.utf8)
            if position + token.count <= bytes.count, ASCII.equal(bytes[position..<(position + token.count)], lowered: token) {
                prefix = String(candidate.dropLast())
                position += token.count
                break
            }
        }
        let valueStart = position
        let (text, quoted) = try readValue()
        let at = valueStart + (quoted ? 1 : 0)
        let valueClass = kind.valueClass
        switch prefix {
        case "value":
            return .exact(ASCII.lowercased(text))
        case "regex":
            return .regexes([try compile(text, at: at)])
        case "rfile":
            var patterns: [POSIXRegex] = []
            for (line, pattern) in try readLines(text, at: termStart) {
                do {
                    patterns.append(try POSIXRegex(pattern))
                } catch {
                    throw RuleSyntaxError(offset: at, message: "\(text) line \(line): \(error)")
                }
            }
            return .regexes(patterns)
        case "file":
            let lines = try readLines(text, at: termStart)
            if valueClass == .ip {
                return .networks(try lines.map { (line, entry) throws(RuleSyntaxError) in
                    guard let network = CIDR(entry) else {
                        throw RuleSyntaxError(offset: at, message: "\(text) line \(line): invalid address or network '\(entry)'")
                    }
                    return network
                })
            }
            var exact: Set<String> = [], domains: Set<String> = []
            for (_, entry) in lines {
                if valueClass == .address && entry.hasPrefix("@") {
                    domains.insert(ASCII.lowercased(String(entry.dropFirst())))
                } else {
                    exact.insert(ASCII.lowercased(entry))
                }
            }
            return .list(exact: exact, domains: domains)
        case "cidr":
            guard valueClass == .ip else {
                throw RuleSyntaxError(offset: valueStart - 5, message: "cidr: lookups are only for client-ip, server-ip and xforward-addr")
            }
            return .networks(try parseNetworks(text, at: at))
        default:
            switch valueClass {
            case .ip:
                return .networks(try parseNetworks(text, at: at))
            case .address where text.hasPrefix("@") && text.utf8.count > 1:
                return .domain(ASCII.lowercased(String(text.dropFirst())))
            default:
                if kind == .mailProtocol && Endpoint.MailProtocol(rawValue: ASCII.lowercased(text)) == nil {
                    throw RuleSyntaxError(offset: at, message: "invalid protocol '\(text)': expected smtp or lmtp")
                }
                return .exact(ASCII.lowercased(text))
            }
        }
    }

    /// VALUE: quoted, or up to whitespace, `&&`, `||` or a `)` that closes nothing inside it.
    package mutating func readValue() throws(RuleSyntaxError) -> (String, quoted: Bool) {
        if peek == 0x22 { return (try readQuoted(), true) }
        let start = position
        var depth = 0
        while let byte = peek, !ASCII.isSpace(byte) {
            if byte == 0x28 { depth += 1 }
            if byte == 0x29 {
                if depth == 0 { break }
                depth -= 1
            }
            if depth == 0 && position + 1 < bytes.count && (byte == 0x26 || byte == 0x7C) && bytes[position + 1] == byte { break }
            position += 1
        }
        guard position > start else {
            throw RuleSyntaxError(offset: start, message: "missing value (write \"\" for an empty one)")
        }
        return (String(decoding: bytes[start..<position], as: UTF8.self), false)
    }
}

