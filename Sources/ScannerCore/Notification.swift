import Glibc
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil

/// The message `notify` sends to AdminMail: what was found, what was done, for whom.
/// XXX: `[Notifier] TemplatesDir` is not read yet; the text is built in.
package enum Notification {
    package static func message(original e: Envelope, decisions: [RecipientDecision], findings: [Finding],
                        headers: [HeaderField], config: PosternConfig, id: String,
                        now: time_t = time(nil)) -> (id: String, buffer: ByteBuffer) {
        let host = config.general.hostname
        func field(_ name: String) -> String {
            clean(headers.first { $0.name.lowercased() == name }?.value ?? "")
        }
        let what = Set(decisions.map(\.main.rawValue)).sorted().joined(separator: "/")
        var s = LocalMessage.head(date: now, from: "Postern <\(config.notifier.filterMail)>", to: "<\(config.notifier.adminMail)>",
                                  subject: "Postern: message \(e.id) \(what)", messageID: "<\(id)@\(host)>",
                                  autoSubmitted: "auto-generated")
        s += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        s += "Postern on \(host) checked message \(e.id).\r\n\r\n"
        s += "Envelope sender: <\(clean(e.mailFrom))>\r\n"
        s += "Client:          \(clean(e.clientIP)) (\(clean(e.helo)))\r\n"
        s += "From:            \(field("from"))\r\nSubject:         \(field("subject"))\r\nMessage-ID:      \(field("message-id"))\r\n\r\n"
        for d in decisions {
            let extras = d.extras.map(\.description).joined(separator: ", ")
            s += "<\(clean(e.recipients[d.recipient].address))>: \(d.main.rawValue)\(extras.isEmpty ? "" : ", " + extras)\r\n"
        }
        s += "\r\nFindings:\r\n"
        for f in findings where f.isBlocking { s += "  \(f.plugin): \(clean(f.detail))\r\n" }
        if decisions.contains(where: { $0.extras.contains(.quarantine) }) {
            s += "\r\nA copy is in the quarantine: posternctl quarantine show \(e.id)\r\n"
        }
        return (id, ByteBuffer(string: s))
    }

    private static func clean(_ s: String) -> String {
        ASCII.oneLine(String(decoding: s.utf8.prefix(500), as: UTF8.self), with: " ")
    }
}
