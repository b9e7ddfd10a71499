import PosternUtil

/// What a notification tells of; each event has a template per party (`virus-admin.txt`).
public enum NotifyEvent: String, Sendable, CaseIterable {
    case virus, spam, banned, error, quarantine
}

/// The `$NAME$` macros of a template.
/// - SeeAlso: `docs/configuration.md` (Notification templates)
public enum TemplateMacro: String, Sendable, CaseIterable {
    case postmaster = "POSTMASTER", filterMail = "FILTER_MAIL", hostname = "HOSTNAME", queueID = "QUEUE_ID"
    case subject = "SUBJECT", msgID = "MSGID", from = "FROM", date = "DATE"
    case sender = "SENDER", rcpts = "RCPTS", to = "TO", clientIP = "CLIENT_IP"
    case action = "ACTION", viruses = "VIRUSES", banned = "BANNED", score = "SCORE", report = "REPORT"
    /// The address a recipient replies to for a release, its token in it (quarantine-recipients.txt).
    case release = "RELEASE"
    /// The digest's list: one entry per message, with its release address (quarantine-digest.txt).
    case digest = "DIGEST"

    /// A value of several lines can only stand in the body.
    public var isMultiLine: Bool { self == .report || self == .digest }

    /// What the digest knows: it is about no one message.
    public static let digestMacros: Set<TemplateMacro> = [.postmaster, .filterMail, .hostname, .to, .digest]
}

/// A notification template as parsed at load: header fields and a body in which text and
/// macros alternate. The file is a message: `Name: value` lines (folded lines go on with
/// a space or tab), an empty line, the body. `$$` is a dollar sign.
public struct NotificationTemplate: Sendable {
    public enum Piece: Sendable, Hashable {
        case text(String)
        case macro(TemplateMacro)
    }

    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: [Piece]
    }

    public var fields: [Field]
    public var body: [[Piece]]

    /// Fields Postern writes into every notification itself.
    public static let ownFields = ["date", "message-id", "auto-submitted", "mime-version", "content-type",
                                   "content-transfer-encoding", "in-reply-to", "references"]
    /// Fields a template must have.
    public static let requiredFields = ["From", "To", "Subject"]

    /// Parses a template; every problem is a `file:line:column` error.
    /// `unavailable` names the macros this template may not use, with why.
    public static func parse(_ text: String, file: String, unavailable: [TemplateMacro: String] = [:]) -> Result<NotificationTemplate, ConfigErrors> {
        var errors: [ConfigError] = []
        func fail(_ line: Int, _ column: Int, _ message: String) {
            errors.append(ConfigError(file: file, line: line, column: column, message: message))
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last == "" { lines.removeLast() }
        guard let blank = lines.firstIndex(where: \.isEmpty) else {
            fail(max(lines.count, 1), 1, "no empty line after the header fields: a template is header fields, an empty line, the body")
            return .failure(ConfigErrors(errors))
        }
        var fields: [Field] = []
        for (k, line) in lines[..<blank].enumerated() {
            if line.first == " " || line.first == "\t", !fields.isEmpty {
                fields[fields.count - 1].value += [.text(" ")] + pieces(line.drop { $0 == " " || $0 == "\t" }, line: k + 1,
                                                                         column: 1 + line.unicodeScalars.prefix { $0 == " " || $0 == "\t" }.count, header: true,
                                                                         unavailable, fail)
                continue
            }
            guard let colon = line.firstIndex(of: ":"), case let name = line[..<colon], !name.isEmpty,
                  name.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
                fail(k + 1, 1, "expected a header field 'Name: value' (or an empty line before the body)")
                continue
            }
            if ownFields.contains(ASCII.lowercased(String(name))) {
                fail(k + 1, 1, "\(name) is written by Postern; leave it out of the template")
                continue
            }
            let value = line[line.index(after: colon)...]
            let trimmed = value.drop { $0 == " " || $0 == "\t" }
            fields.append(Field(name: String(name), value: pieces(trimmed, line: k + 1, column: 1 + name.unicodeScalars.count + 1
                + value.unicodeScalars.count - trimmed.unicodeScalars.count, header: true, unavailable, fail)))
        }
        for required in requiredFields where !fields.contains(where: { ASCII.lowercased($0.name) == ASCII.lowercased(required) }) {
            fail(1, 1, "no \(required): field")
        }
        let body = lines[(blank + 1)...].enumerated().map { k, line in
            pieces(line, line: blank + 2 + k, column: 1, header: false, unavailable, fail)
        }
        guard errors.isEmpty else { return .failure(ConfigErrors(errors)) }
        return .success(NotificationTemplate(fields: fields, body: body))
    }

    /// `text` as text and macros; `column` is where it starts on its line.
    private static func pieces(_ text: Substring, line: Int, column: Int, header: Bool, _ unavailable: [TemplateMacro: String],
                               _ fail: (Int, Int, String) -> Void) -> [Piece] {
        var result: [Piece] = []
        var literal = ""
        var rest = text.unicodeScalars[...]
        var at = column
        while let dollar = rest.firstIndex(of: "$") {
            literal.unicodeScalars += rest[..<dollar]
            at += rest.distance(from: rest.startIndex, to: dollar)
            let after = rest[rest.index(after: dollar)...]
            guard let close = after.firstIndex(of: "$") else {
                fail(line, at, "a '$' without its closing '$' (write $$ for a dollar sign)")
                return result
            }
            let name = String(String.UnicodeScalarView(after[..<close]))
            if name.isEmpty {
                literal += "$"
            } else if let macro = TemplateMacro(rawValue: name) {
                if header && macro.isMultiLine { fail(line, at, "$\(name)$ has several lines: it can only stand in the body") }
                if let why = unavailable[macro] { fail(line, at, "$\(name)$ \(why)") }
                if !literal.isEmpty { result.append(.text(literal)) }
                literal = ""
                result.append(.macro(macro))
            } else {
                let known = TemplateMacro.allCases.map { "$\($0.rawValue)$" }.joined(separator: ", ")
                fail(line, at, "unknown macro $\(name)$: expected one of \(known)")
            }
            at += name.unicodeScalars.count + 2
            rest = after[after.index(after: close)...]
        }
        literal.unicodeScalars += rest
        if !literal.isEmpty { result.append(.text(literal)) }
        return result
    }

    /// The header fields and the body lines with `values` put in, each value on one line but
    /// a multi-line one's (whose lines the caller ends with CRLF); a macro without a value is
    /// left empty, and a header field whose every macro is empty is left out (the recipients'
    /// `Reply-To: <$RELEASE$>` when there is nothing to release).
    public func render(_ values: [TemplateMacro: String]) -> (fields: [(name: String, value: String)], body: [String]) {
        // A value from the message (its Subject) cannot break a line or the header.
        func fill(_ pieces: [Piece]) -> String {
            pieces.map { piece in
                switch piece {
                case .text(let s): return s
                case .macro(let m) where m.isMultiLine: return values[m] ?? ""
                case .macro(let m): return ASCII.oneLine(String(decoding: (values[m] ?? "").utf8.prefix(500), as: UTF8.self), with: " ")
                }
            }.joined()
        }
        let kept = fields.filter { field in
            let macros = field.value.compactMap { if case .macro(let m) = $0 { m } else { nil } }
            return macros.isEmpty || macros.contains { !(values[$0] ?? "").isEmpty }
        }
        return (kept.map { ($0.name, fill($0.value)) }, body.map(fill))
    }
}

/// The templates of `[Notifier] TemplatesDir`: one per event and party, all of them required.
public struct NotificationTemplates: Sendable {
    public var byName: [String: NotificationTemplate]
    /// The file of `posternctl quarantine digest`'s notice.
    public static let digestFile = "quarantine-digest.txt"

    /// `virus-admin.txt`.
    public static func fileName(_ event: NotifyEvent, _ party: NotifyParty) -> String {
        "\(event.rawValue)-\(party.rawValue).txt"
    }

    public func template(_ event: NotifyEvent, _ party: NotifyParty) -> NotificationTemplate {
        byName[Self.fileName(event, party)]!   // load requires every one
    }

    public var digest: NotificationTemplate { byName[Self.digestFile]! }

    /// Reads every template of `directory`; a file that cannot be read is an error at `at`
    /// (the TemplatesDir line), a broken one at its own position. `releaseAddress`: whether
    /// `[Quarantine] ReleaseAddress` is set, without which `$RELEASE$` has nothing to say.
    public static func load(directory: String, at: (file: String, line: Int, column: Int),
                            releaseAddress: Bool) -> Result<NotificationTemplates, ConfigErrors> {
        var errors: [ConfigError] = []
        var byName: [String: NotificationTemplate] = [:]
        func read(_ name: String, unavailable: [TemplateMacro: String]) {
            let path = (directory.hasSuffix("/") ? directory : directory + "/") + name
            do throws(FileReadError) {
                switch NotificationTemplate.parse(try TextFile.read(path), file: path, unavailable: unavailable) {
                case .success(let template): byName[name] = template
                case .failure(let e): errors += e.errors
                }
            } catch {
                errors.append(ConfigError(file: at.file, line: at.line, column: at.column, message: "TemplatesDir: \(error.description)"))
            }
        }
        let noRelease = releaseAddress ? nil : "needs [Quarantine] ReleaseAddress, the address recipients reply to (docs/postfix.md)"
        for event in NotifyEvent.allCases {
            for party in NotifyParty.allCases {
                var unavailable: [TemplateMacro: String] = [.digest: "is only for \(digestFile), which lists several messages"]
                unavailable[.release] = event == .quarantine && party == .recipients ? noRelease
                    : "is only for \(fileName(.quarantine, .recipients)): only a recipient releases, and only what is offered for release"
                read(fileName(event, party), unavailable: unavailable)
            }
        }
        var forDigest: [TemplateMacro: String] = [:]
        for macro in TemplateMacro.allCases where !TemplateMacro.digestMacros.contains(macro) {
            forDigest[macro] = "is about one message; the digest lists several: $DIGEST$ has each one's details"
        }
        read(digestFile, unavailable: forDigest)
        return errors.isEmpty ? .success(NotificationTemplates(byName: byName)) : .failure(ConfigErrors(errors))
    }
}
