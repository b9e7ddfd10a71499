/// Why a command line was refused; mapped to a reply by the server.
public struct CommandError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable { case syntax, unknownCommand, badAddress, utf8NotDeclared }
    public var kind: Kind
    public var hint: String
    public init(_ kind: Kind, _ hint: String) {
        self.kind = kind
        self.hint = hint
    }
    public var description: String { hint }
}

/// A command line from an SMTP or LMTP client.
/// - SeeAlso: RFC 5321 §4.1.1, RFC 2033 (LHLO), RFC 3030 (BDAT), Postfix XFORWARD_README
public enum Command: Sendable, Hashable {
    case helo(String)
    case ehlo(String)
    case lhlo(String)
    case mail(from: String, MailParameters)
    case rcpt(to: String, MailParameters)
    case data
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case vrfy
    case help
    case starttls
    /// XFORWARD attributes, keys upper-cased, values as sent (xtext-decoded later where needed).
    case xforward([String: String])

    /// The verb, upper-cased, as used in logs and the command table.
    public var verb: String {
        switch self {
        case .helo: "HELO"
        case .ehlo: "EHLO"
        case .lhlo: "LHLO"
        case .mail: "MAIL"
        case .rcpt: "RCPT"
        case .data: "DATA"
        case .bdat: "BDAT"
        case .rset: "RSET"
        case .noop: "NOOP"
        case .quit: "QUIT"
        case .vrfy: "VRFY"
        case .help: "HELP"
        case .starttls: "STARTTLS"
        case .xforward: "XFORWARD"
        }
    }
}

extension Command {
    /// Parses one command line (without CRLF). Non-ASCII in MAIL FROM needs the SMTPUTF8
    /// parameter (RFC 6531 §3.4); for RCPT the server checks the transaction's declaration.
    public static func parse(_ line: Substring) throws(CommandError) -> Command {
        // The verb ends at the first space octet. Not at the first " " Character: a space
        // followed by a combining mark is one grapheme, and "EHLO \u{301}x" had no verb.
        let scalars = line.unicodeScalars
        let sp = scalars.firstIndex(of: " ")
        let verb = Substring(sp.map { scalars[..<$0] } ?? scalars[...]).uppercased()
        let rest = sp.map { Substring(scalars[scalars.index(after: $0)...]) } ?? ""
        switch verb {
        case "HELO", "EHLO", "LHLO":
            let name = rest.trimmingSpaces
            guard !name.isEmpty else { throw CommandError(.syntax, "\(verb) requires a domain name") }
            guard name.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 }) || verb != "HELO" else {
                throw CommandError(.syntax, "bad domain name")
            }
            // The domain ends at white space, a tab included, as trimming counts it (else a
            // name could end in a tab that no client can send back the same way).
            let n = String(name.split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? name)
            return verb == "HELO" ? .helo(n) : verb == "EHLO" ? .ehlo(n) : .lhlo(n)
        case "MAIL":
            let (path, params) = try parsePathCommand(rest, prefix: "FROM:")
            let p = try MailParameters.parse(params)
            return .mail(from: try parseReversePath(path, utf8: p.has("SMTPUTF8")), p)
        case "RCPT":
            let (path, params) = try parsePathCommand(rest, prefix: "TO:")
            let address = try parseForwardPath(path)
            return .rcpt(to: address, try MailParameters.parse(params))
        case "DATA": return try noArgs(rest, .data)
        case "RSET": return try noArgs(rest, .rset)
        case "QUIT": return try noArgs(rest, .quit)
        case "NOOP": return .noop
        case "VRFY": return .vrfy
        case "HELP": return .help
        case "STARTTLS": return try noArgs(rest, .starttls)
        case "BDAT":
            let words = rest.split(separator: " ")
            guard (1...2).contains(words.count), let size = Int(words[0]), size >= 0,
                  words.count == 1 || words[1].uppercased() == "LAST"
            else { throw CommandError(.syntax, "BDAT chunk-size [LAST]") }
            return .bdat(size: size, last: words.count == 2)
        case "XFORWARD":
            var attrs: [String: String] = [:]
            for word in rest.split(separator: " ") {
                guard let eq = word.firstIndex(of: "="), eq != word.startIndex else {
                    throw CommandError(.syntax, "bad XFORWARD attribute")
                }
                attrs[word[..<eq].uppercased()] = String(word[word.index(after: eq)...])
            }
            guard !attrs.isEmpty else { throw CommandError(.syntax, "XFORWARD requires attributes") }
            return .xforward(attrs)
        default:
            throw CommandError(.unknownCommand, "command not recognized")
        }
    }

    private static func noArgs(_ rest: Substring, _ c: Command) throws(CommandError) -> Command {
        guard rest.trimmingSpaces.isEmpty else { throw CommandError(.syntax, "\(c.verb) takes no arguments") }
        return c
    }

    /// Splits `FROM:<path> params` (a space after the colon is tolerated, as Postfix does).
    package static func parsePathCommand(_ rest: Substring, prefix: String) throws(CommandError) -> (Substring, Substring) {
        let octets = rest.utf8
        var i = octets.startIndex
        for p in prefix.utf8 {
            // The prefix is upper-case letters and a colon: a letter matches in either case.
            guard i < octets.endIndex, octets[i] == p || (p >= 0x41 && p <= 0x5A && octets[i] == p + 0x20) else {
                throw CommandError(.syntax, "syntax: expected \(prefix)<address>")
            }
            i = octets.index(after: i)
        }
        while i < octets.endIndex && octets[i] == UInt8(ascii: " ") { i = octets.index(after: i) }
        return try parsePath(rest[i...])
    }

    /// Splits `<path> params` (or a bare address and params) at the path's end. Octets, not
    /// Characters, delimit it: `<`, `>`, `"`, `\` and the space are ASCII, never part of
    /// a UTF-8 sequence, and a combining mark after one does not hide it (as with the verb).
    package static func parsePath(_ arg: Substring) throws(CommandError) -> (Substring, Substring) {
        let octets = arg.utf8
        guard octets.first == UInt8(ascii: "<") else {
            // Bare address without brackets: accepted like Postfix's default (strict_rfc821_envelopes = no).
            let end = octets.firstIndex(of: UInt8(ascii: " ")) ?? octets.endIndex
            guard end > octets.startIndex else { throw CommandError(.syntax, "missing address") }
            // Quoting and brackets need the <…> form; the spool stores every path that way.
            guard !octets[..<end].contains(where: { $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                throw CommandError(.syntax, "address with quotes or brackets must be enclosed in <>")
            }
            return (arg[..<end], arg[end...])
        }
        // Find the closing '>' outside a quoted local part.
        var quoted = false
        var escaped = false
        var i = octets.index(after: octets.startIndex)
        while i < octets.endIndex {
            let c = octets[i]
            if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { quoted.toggle() } else if c == UInt8(ascii: ">") && !quoted {
                let after = octets.index(after: i)
                guard after == octets.endIndex || octets[after] == UInt8(ascii: " ") else {
                    throw CommandError(.syntax, "junk after address")
                }
                return (arg[octets.index(after: octets.startIndex)..<i], arg[after...])
            }
            i = octets.index(after: i)
        }
        throw CommandError(.syntax, "missing '>' after address")
    }

    /// `Reverse-path = Path / "<>"`; source routes (`@a,@b:`) are dropped as RFC 5321 §C allows.
    package static func parseReversePath(_ path: Substring, utf8: Bool) throws(CommandError) -> String {
        if path.isEmpty { return "" }
        return try parseMailbox(path, utf8: utf8)
    }

    package static func parseForwardPath(_ path: Substring) throws(CommandError) -> String {
        guard !path.isEmpty else { throw CommandError(.badAddress, "empty recipient address") }
        // The SMTPUTF8 declaration belongs to the transaction; the server checks it.
        return try parseMailbox(path, utf8: true)
    }

    /// `Mailbox = Local-part "@" ( Domain / address-literal )`; a bare `postmaster` is allowed for RCPT.
    package static func parseMailbox(_ path: Substring, utf8: Bool) throws(CommandError) -> String {
        var p = path
        // A-d-l = At-domain *( "," At-domain ) ":": a colon after a quote or a space is not the
        // route's (it may lie inside a quoted local part, and cutting there would leave a path
        // with an unbalanced quote, which the spool cannot read back).
        if p.first == "@", let colon = p.firstIndex(of: ":"),
           !p[..<colon].contains(where: { $0 == "\"" || $0 == "\\" || $0 == " " }) {
            p = p[p.index(after: colon)...]
        }
        guard !p.isEmpty, p.count <= 512 else { throw CommandError(.badAddress, "bad address length") }
        for s in p.unicodeScalars {
            if s.value < 33 || s.value == 127 {
                // Spaces are legal only inside a quoted local part.
                guard s == " ", p.hasPrefix("\"") else { throw CommandError(.badAddress, "bad character in address") }
            }
            if s.value > 127 && !utf8 { throw CommandError(.utf8NotDeclared, "non-ASCII address without SMTPUTF8") }
        }
        guard p.contains("@") || p.lowercased() == "postmaster" else {
            throw CommandError(.badAddress, "address must be fully qualified")
        }
        if p.hasSuffix("@") || p.hasPrefix("@") { throw CommandError(.badAddress, "bad address") }
        return String(p)
    }
}

extension Substring {
    package var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
