import PosternUtil
extension ActionList {
    /// ```
    /// actions   = main *3("," extra)                ; names case-insensitive, spaces allowed
    /// main      = "pass" / "reject" / "tempfail" / "discard" / "continue"
    /// extra     = "quarantine" / "notify" / "redirect(" addr *("|" addr) ")"
    ///           / "score(" number ")" / "add-header(" [field-name ":"] body ")"
    /// ```
    /// Commas inside parentheses do not split, so `add-header(X-Note: a, b)` is one extra.
    public static func parse(_ text: String) throws(ActionError) -> ActionList {
        let parts = split(Array(text.utf8))
        guard let first = parts.first, !first.text.isEmpty else { throw ActionError(.missingMainAction, offset: 0) }
        guard let main = MainAction(rawValue: ASCII.lowercased(first.text)) else {
            throw ActionError(.unknownMainAction(first.text), offset: first.offset)
        }
        var extras: [ExtraAction] = []
        for part in parts.dropFirst() {
            let extra = try parseExtra(part.text, offset: part.offset)
            if extras.count == maximumExtras { throw ActionError(.tooManyExtras, offset: part.offset) }
            if extra == .quarantine || extra == .notify, extras.contains(extra) {
                throw ActionError(.duplicate(part.text), offset: part.offset)
            }
            extras.append(extra)
        }
        return ActionList(main: main, extras: extras)
    }

    private static func parseExtra(_ text: String, offset: Int) throws(ActionError) -> ExtraAction {
        let lowered = ASCII.lowercased(text)
        if lowered == "quarantine" { return .quarantine }
        if lowered == "notify" { return .notify }
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else {
            throw ActionError(text.isEmpty ? .missingAction : .unknownAction(text), offset: offset)
        }
        let name = ASCII.lowercased(ASCII.trim(text[..<open]))
        let argument = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        switch name {
        case "redirect":
            let addresses = argument.split(separator: "|", omittingEmptySubsequences: false).map { ASCII.trim($0) }
            guard addresses.allSatisfy(isAddress) else { throw ActionError(.invalidRedirect, offset: offset) }
            return .redirect(addresses)
        case "score":
            guard let value = Double(ASCII.trim(argument)), value.isFinite else {
                throw ActionError(.invalidScore, offset: offset)
            }
            return .score(value)
        case "add-header":
            return try parseHeader(argument, offset: offset)
        default:
            throw ActionError(.unknownAction(text), offset: offset)
        }
    }

    private static func parseHeader(_ argument: String, offset: Int) throws(ActionError) -> ExtraAction {
        var name = defaultHeaderName
        var body = Substring(argument)
        if let colon = argument.firstIndex(of: ":") {
            let candidate = argument[..<colon]
            // RFC 5322 §3.6.8: field-name = 1*(%d33-57 / %d59-126)
            if !candidate.isEmpty, candidate.utf8.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != 58 }) {
                name = String(candidate)
                body = argument[argument.index(after: colon)...]
            }
        }
        // Sanitised first: a body of control characters is as empty as one of spaces.
        let clean = ASCII.trim(sanitise(String(body)))
        guard !clean.isEmpty else { throw ActionError(.emptyHeader, offset: offset) }
        return .addHeader(name: name, body: clean)
    }

    /// Replaces CR, LF, NUL and other control characters (except TAB) with a space, so a
    /// configured or plug-in supplied body can never start a new header line or end the header.
    public static func sanitise(_ body: String) -> String {
        ASCII.replacing(body, where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }, with: 0x20)
    }

    /// An address as an action, a setting or a command line may give one: no spaces, controls,
    /// angle brackets or commas.
    public static func isAddress(_ text: String) -> Bool {
        !text.isEmpty && !text.utf8.contains { $0 <= 0x20 || $0 == 0x7F || $0 == 0x3C || $0 == 0x3E || $0 == 0x2C }
    }

    /// Splits at commas outside parentheses; each part trimmed, with the byte offset of its start.
    private static func split(_ bytes: [UInt8]) -> [(text: String, offset: Int)] {
        var parts: [(String, Int)] = []
        var depth = 0
        var start = 0
        for index in 0...bytes.count {
            if index < bytes.count {
                if bytes[index] == 0x28 { depth += 1 }
                if bytes[index] == 0x29 { depth = max(0, depth - 1) }
                if bytes[index] != 0x2C || depth > 0 { continue }
            }
            var first = start
            while first < index && ASCII.isSpace(bytes[first]) { first += 1 }
            parts.append((ASCII.trim(String(decoding: bytes[first..<index], as: UTF8.self)), first))
            start = index + 1
        }
        return parts
    }
}

/// Why an action list did not parse, with the byte offset of the offending action.
public struct ActionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of mistake.
    public enum Reason: Sendable, Hashable {
        case missingMainAction, missingAction, unknownMainAction(String), unknownAction(String)
        case tooManyExtras, duplicate(String), invalidRedirect, invalidScore, emptyHeader
    }

    /// What is wrong.
    public var reason: Reason
    /// Byte offset into the text.
    public var offset: Int

    /// Creates an error.
    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        switch reason {
        case .missingMainAction: "missing action: expected pass, reject, tempfail, discard or continue"
        case .missingAction: "empty action in list"
        case .unknownMainAction(let name): "unknown main action '\(name)': expected pass, reject, tempfail, discard or continue"
        case .unknownAction(let name): "unknown action '\(name)': expected quarantine, redirect(…), notify, score(…) or add-header(…)"
        case .tooManyExtras: "too many actions: at most \(ActionList.maximumExtras) after the main action"
        case .duplicate(let name): "action '\(name)' given twice"
        case .invalidRedirect: "redirect needs addresses separated by '|', e.g. redirect(abuse@example.com)"
        case .invalidScore: "score needs a number, e.g. score(5)"
        case .emptyHeader: "add-header needs a body, e.g. add-header(X-Spam: yes)"
        }
    }
}
