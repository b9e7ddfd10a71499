import Glibc
import PosternMIME
import PosternUtil

extension NotificationTemplate {
    /// The notice as a message: Postern's own fields around the template's, its text in UTF-8.
    /// `autoReplied`: an answer to a message (RFC 3834 §5), `inReplyTo` its Message-ID when it
    /// has one (§3.1.3); otherwise `auto-generated`.
    public func write(_ values: [TemplateMacro: String], date: time_t, messageID: String,
                      autoReplied: Bool = false, inReplyTo: String? = nil) -> String {
        let (fields, body) = render(values)
        var s = "Date: \(Timestamp.format(date, Timestamp.rfc5322))\r\n"
        for (name, value) in fields { s += "\(name): \(Self.encoded(value, addressField: Self.addressFields.contains(ASCII.lowercased(name))))\r\n" }
        s += "Message-ID: \(messageID)\r\n"
        if let inReplyTo { s += "In-Reply-To: \(inReplyTo)\r\nReferences: \(inReplyTo)\r\n" }
        s += "Auto-Submitted: \(autoReplied ? "auto-replied" : "auto-generated")\r\n"
        s += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        s += body.joined(separator: "\r\n") + "\r\n"
        return s
    }

    private static let addressFields: Set<String> = ["from", "to", "cc", "reply-to", "sender"]

    /// A field value with its non-ASCII text in encoded words; in an address field only the
    /// display name before `<` (an encoded word cannot stand in an address).
    private static func encoded(_ value: String, addressField: Bool) -> String {
        guard addressField, let open = value.lastIndex(of: "<") else { return EncodedWord.encode(value) }
        let name = value[..<open].trimmingPrefix(while: { $0 == " " || $0 == "\"" })
        let display = String(name.reversed().drop(while: { $0 == " " || $0 == "\"" }).reversed())
        guard !display.utf8.allSatisfy({ $0 < 0x80 }) else { return value }
        return EncodedWord.encode(display) + " " + value[open...]
    }
}
