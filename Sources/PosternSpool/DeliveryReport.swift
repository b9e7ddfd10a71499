import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

/// A delivery status notification for recipients that failed (RFC 3464, in an RFC 6522
/// multipart/report), from the null sender to the original sender.
/// - SeeAlso: RFC 3464, RFC 6522, RFC 3461 §5 (NOTIFY, RET, ENVID, ORCPT), RFC 3834
public struct DeliveryReport: Sendable {
    /// One recipient that will not get the message.
    public struct Failure: Sendable {
        public var recipient: Recipient
        /// `5.x.x` (from the next hop's enhanced code, or our own).
        public var status: String
        /// The next hop's reply, or our reason.
        public var diagnostic: String
        /// The next hop, as routed.
        public var remote: String

        public init(recipient: Recipient, status: String, diagnostic: String, remote: String) {
            self.recipient = recipient
            self.status = status
            self.diagnostic = diagnostic
            self.remote = remote
        }
    }

    /// Postfix's bounce_size_limit: more of the original than this is returned as headers only.
    public static let fullMessageLimit = 50_000

    /// Whether the sender asked for (or did not refuse) a failure report for `r` (RFC 3461 §4.1),
    /// and there is someone to send it to (never a report about a report).
    public static func wanted(for r: Recipient, sender: String) -> Bool {
        guard !sender.isEmpty else { return false }
        guard let notify = r.parameters["NOTIFY"]?.uppercased() else { return true }
        return notify.split(separator: ",").contains("FAILURE")
    }

    /// The report message (header and body, CRLF line ends) for `original`.
    /// `headersOnly` forces RET=HDRS: a message blocked for its content is never sent back whole.
    public static func message(original e: Envelope, failures: [Failure], originalMessage: ByteBuffer,
                               hostname: String, reportID: String, headersOnly forced: Bool = false,
                               now: time_t = time(nil)) -> ByteBuffer {
        let boundary = "\(reportID)/\(hostname)"
        var s = LocalMessage.head(date: now, from: "Mail Delivery System <MAILER-DAEMON@\(hostname)>", to: "<\(e.mailFrom)>",
                                  subject: "Undelivered Mail Returned to Sender", messageID: "<\(reportID)@\(hostname)>",
                                  autoSubmitted: "auto-replied")
        s += "MIME-Version: 1.0\r\n"
        s += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"\r\n"
        s += "\r\n"
        s += "This is a MIME-encapsulated message.\r\n\r\n"
        s += "--\(boundary)\r\n"
        s += "Content-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        s += "This is the mail system at host \(hostname).\r\n\r\n"
        s += "Your message (queue id \(e.id)) could not be delivered to one or more recipients.\r\n"
        s += "It is attached below.\r\n\r\n"
        for f in failures { s += "<\(f.recipient.address)>: \(clean(f.diagnostic))\r\n" }
        s += "\r\n--\(boundary)\r\n"
        s += "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        s += "Reporting-MTA: dns; \(hostname)\r\n"
        s += "X-Postern-Queue-ID: \(e.id)\r\n"
        if let envid = e.mailParameters["ENVID"] { s += "Original-Envelope-Id: \(envid)\r\n" }
        s += "Arrival-Date: \(Timestamp.format(time_t(e.arrival), Timestamp.rfc5322))\r\n"
        for f in failures {
            s += "\r\nFinal-Recipient: rfc822; \(f.recipient.address)\r\n"
            if let orcpt = f.recipient.parameters["ORCPT"] {
                s += "Original-Recipient: \(orcpt.replacingFirstSemicolon())\r\n"
            }
            s += "Action: failed\r\n"
            s += "Status: \(f.status)\r\n"
            s += "Remote-MTA: x-postern; \(clean(f.remote))\r\n"
            s += "Diagnostic-Code: smtp; \(clean(f.diagnostic))\r\n"
        }
        var out = ByteBuffer()
        out.writeString(s)
        let headersOnly = forced || e.mailParameters["RET"]?.uppercased() == "HDRS" || originalMessage.readableBytes > fullMessageLimit
        out.writeString("\r\n--\(boundary)\r\n")
        if headersOnly {
            out.writeString("Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n")
            out.writeImmutableBuffer(headerSection(originalMessage))
        } else {
            out.writeString("Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n")
            out.writeImmutableBuffer(originalMessage)
            if originalMessage.readableBytes > 0,
               originalMessage.getInteger(at: originalMessage.writerIndex - 1, as: UInt8.self) != UInt8(ascii: "\n") {
                out.writeString("\r\n")
            }
        }
        out.writeString("\r\n--\(boundary)--\r\n")
        return out
    }

    /// The header section of a message, up to and including the empty line.
    package static func headerSection(_ m: ByteBuffer) -> ByteBuffer {
        let view = m.readableBytesView
        var i = view.startIndex
        while i < view.endIndex {
            // CRLF CRLF or LF LF ends the header section.
            if view[i] == UInt8(ascii: "\n") {
                let next = view.index(after: i)
                if next < view.endIndex && view[next] == UInt8(ascii: "\n") { return m.getSlice(at: m.readerIndex, length: next - view.startIndex + 1)! }
                if next + 1 < view.endIndex && view[next] == UInt8(ascii: "\r") && view[next + 1] == UInt8(ascii: "\n") {
                    return m.getSlice(at: m.readerIndex, length: next + 2 - view.startIndex)!
                }
            }
            i += 1
        }
        return m
    }

    /// Report fields are single lines.
    package static func clean(_ s: String) -> String {
        ASCII.replacing(s, where: ASCII.isControl, with: 0x20)
    }
}

extension String {
    /// ORCPT is `addr-type;xtext`; the report field is `addr-type; address`.
    fileprivate func replacingFirstSemicolon() -> String {
        guard let i = firstIndex(of: ";") else { return self }
        return String(self[..<i]) + "; " + XText.decode(self[index(after: i)...])
    }
}
