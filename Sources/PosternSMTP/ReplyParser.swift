import NIOCore

/// Errors a client sees in a server's replies.
public struct ReplyParseError: Error, Sendable, CustomStringConvertible {
    public var hint: String
    public init(hint: String) { self.hint = hint }
    public var description: String { "malformed reply: \(hint)" }
}

/// Assembles multi-line replies from CRLF-terminated lines (client side).
/// - SeeAlso: RFC 5321 §4.2.1
public struct ReplyParser: Sendable {
    private var code: Int?
    private var lines: [String] = []

    public init() {}

    /// Feeds one line without its CRLF; returns a reply when its last line arrived.
    public mutating func feed(_ line: Substring) throws(ReplyParseError) -> Reply? {
        let utf8 = Array(line.utf8)
        guard utf8.count >= 3, let c = Int(String(decoding: utf8[0..<3], as: UTF8.self)),
              (200...599).contains(c)
        else { throw ReplyParseError(hint: "no reply code in \(line.prefix(40).debugDescription)") }
        if let code, code != c { throw ReplyParseError(hint: "code changed inside a multi-line reply") }
        let last: Bool
        if utf8.count == 3 { last = true } else if utf8[3] == UInt8(ascii: " ") { last = true } else if utf8[3] == UInt8(ascii: "-") { last = false } else {
            throw ReplyParseError(hint: "bad separator after reply code")
        }
        code = c
        lines.append(utf8.count > 4 ? String(decoding: utf8[4...], as: UTF8.self) : "")
        guard lines.count <= SMTPDefaults.maxReplyLines else { throw ReplyParseError(hint: "too many reply lines") }
        guard last else { return nil }
        defer { code = nil; lines = [] }
        var status: EnhancedStatus?
        if let first = lines.first, let sp = first.firstIndex(of: " ") ?? (first.isEmpty ? nil : first.endIndex),
           let es = EnhancedStatus.parse(first[..<sp]), es.klass == c / 100 {
            status = es
            lines = lines.map { l in
                guard l.hasPrefix(es.description) else { return l }
                return String(l.dropFirst(es.description.count).drop(while: { $0 == " " }))
            }
        }
        return Reply(c, status, lines: lines)
    }
}
