import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

/// A delivery status notification (RFC 3464, in an RFC 6522 multipart/report) from the null
/// sender to the original sender: one report per kind of event (failed, delayed, relayed or
/// delivered), as Postfix sends bounces, delay warnings and success notices apart.
/// - SeeAlso: RFC 3464, RFC 6522, RFC 3461 §5 (NOTIFY, RET, ENVID, ORCPT), RFC 3834
public struct DeliveryReport: Sendable {
    /// RFC 3464 §2.3.3 action-value.
    public enum Action: String, Sendable {
        /// Given up: refused for good, blocked, or past the queue lifetime.
        case failed
        /// Still queued after `[Sender] DelayWarningTime`; retried.
        case delayed
        /// Handed to a next hop that does not offer DSN (RFC 3461 §5.2.2): it will not report.
        case relayed
        /// Handed over LMTP to a mailbox store that does not offer DSN: final delivery.
        case delivered
    }

    /// One recipient the report is about (RFC 3464 §2.3, the per-recipient fields).
    public struct Entry: Sendable {
        public var recipient: Recipient
        /// `5.x.x` for a failure, `4.x.x` for a delay, `2.x.x` for a success.
        public var status: String
        /// The next hop's reply, or our reason.
        public var diagnostic: String
        /// The next hop's host name or address (`Remote-MTA: dns; …`); nil where no MTA was
        /// asked (a block by the content filter, a unix socket, a damaged route).
        public var remote: String?

        public init(recipient: Recipient, status: String, diagnostic: String, remote: String?) {
            self.recipient = recipient
            self.status = status
            self.diagnostic = diagnostic
            self.remote = remote
        }
    }

    /// Postfix's bounce_size_limit: more of the original than this is returned as headers only.
    public static let fullMessageLimit = 50_000

    /// Whether the sender asked for (or, for failures and delays, did not refuse) a report of
    /// `action` for `r` (RFC 3461 §4.1: without NOTIFY, FAILURE and DELAY are implied), and
    /// there is someone to send it to (never a report about a report).
    public static func wanted(_ action: Action, for r: Recipient, sender: String) -> Bool {
        guard !sender.isEmpty else { return false }
        let notify = r.parameters["NOTIFY"].map { $0.uppercased().split(separator: ",") }
        switch action {
        case .failed: return notify?.contains("FAILURE") ?? true
        case .delayed: return notify?.contains("DELAY") ?? true
        case .relayed, .delivered: return notify?.contains("SUCCESS") ?? false
        }
    }

    /// The report message (header and body, CRLF line ends) for `batch`.
    /// `headersOnlyBecause` forces RET=HDRS and says why in the text (a message blocked for its
    /// content is never sent back whole).
    public static func message(_ batch: Batch, originalMessage: ByteBuffer, hostname: String, reportID: String,
                               headersOnlyBecause forced: String? = nil, now: time_t = time(nil)) -> ByteBuffer {
        message(batch, originalSize: originalMessage.readableBytes,
                reading: { originalMessage.getSlice(at: originalMessage.readerIndex, length: $0)! },
                hostname: hostname, reportID: reportID, headersOnlyBecause: forced, now: now)
    }

    /// The same, with the original message `originalSize` octets long and read by `read` (its
    /// first n octets) only as far as the report returns it: whole for a small message, else
    /// its head, at most ``HeaderField/sectionLimit``. A large message is never held.
    public static func message<E: Error>(_ batch: Batch, originalSize: Int, reading read: (Int) throws(E) -> ByteBuffer,
                                         hostname: String, reportID: String, headersOnlyBecause forced: String? = nil,
                                         now: time_t = time(nil)) throws(E) -> ByteBuffer {
        let e = batch.original
        let returned = Returned(batch.action, envelope: e, size: originalSize, forced: forced)
        let originalMessage = try read(returned.headersOnly ? min(originalSize, HeaderField.sectionLimit) : originalSize)
        let boundary = "\(reportID)/\(hostname)"
        var s = LocalMessage.head(date: now, from: "Mail Delivery System <MAILER-DAEMON@\(hostname)>", to: "<\(e.mailFrom)>",
                                  subject: batch.action.subject, messageID: "<\(reportID)@\(hostname)>",
                                  autoSubmitted: "auto-replied")
        s += "MIME-Version: 1.0\r\n"
        s += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"\r\n"
        s += "\r\n"
        s += "This is a MIME-encapsulated message.\r\n\r\n"
        s += "--\(boundary)\r\n"
        s += "Content-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        s += humanReadable(batch, hostname: hostname, returned: returned, now: now)
        s += "\r\n--\(boundary)\r\n"
        s += "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        s += machineReadable(batch, hostname: hostname)
        var out = ByteBuffer()
        out.writeString(s)
        out.writeString("\r\n--\(boundary)\r\n")
        if returned.headersOnly {
            out.writeString("Content-Description: \(batch.action.returnedPart) Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n")
            out.writeImmutableBuffer(headerSection(originalMessage))
        } else {
            out.writeString("Content-Description: \(batch.action.returnedPart)\r\nContent-Type: message/rfc822\r\n\r\n")
            out.writeImmutableBuffer(originalMessage)
            if originalMessage.readableBytes > 0,
               originalMessage.getInteger(at: originalMessage.writerIndex - 1, as: UInt8.self) != UInt8(ascii: "\n") {
                out.writeString("\r\n")
            }
        }
        out.writeString("\r\n--\(boundary)--\r\n")
        return out
    }

    /// The text part: what happened, each recipient with its reason, and what is attached.
    private static func humanReadable(_ batch: Batch, hostname: String, returned: Returned, now: time_t) -> String {
        let e = batch.original
        var s = "This is the mail system at host \(hostname).\r\n\r\n"
        switch batch.action {
        case .failed:
            s += "Your message (queue id \(e.id)) could not be delivered to one or more recipients.\r\n"
            s += "It will not be tried again for them.\r\n"
        case .delayed:
            s += "####### THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #######\r\n\r\n"
            s += "Your message (queue id \(e.id)) has waited \(Self.hours(Double(now) - e.arrival)) and could not be\r\n"
            s += "delivered yet to one or more recipients.\r\n"
            if let until = batch.retryUntil {
                s += "It will be tried again until \(Timestamp.format(time_t(until), Timestamp.rfc5322)).\r\n"
            }
        case .relayed:
            s += "Your message (queue id \(e.id)) was passed on to the next mail system for the\r\n"
            s += "recipients below. That system does not send delivery reports, so this is the\r\n"
            s += "last report you will get for them.\r\n"
        case .delivered:
            s += "Your message (queue id \(e.id)) was delivered to the mailboxes of the recipients below.\r\n"
        }
        s += "\r\n"
        for entry in batch.entries { s += "<\(entry.entry.recipient.address)>: \(clean(entry.entry.diagnostic))\r\n" }
        s += "\r\n" + returned.sentence + "\r\n"
        return s
    }

    /// The message/delivery-status part: the per-message fields, then a group per recipient.
    private static func machineReadable(_ batch: Batch, hostname: String) -> String {
        let e = batch.original
        var s = "Reporting-MTA: dns; \(hostname)\r\n"
        s += "X-Postern-Queue-ID: \(e.id)\r\n"
        if let envid = e.mailParameters["ENVID"] { s += "Original-Envelope-Id: \(clean(XText.decode(envid)))\r\n" }
        s += "Arrival-Date: \(Timestamp.format(time_t(e.arrival), Timestamp.rfc5322))\r\n"
        for (_, f) in batch.entries {
            s += "\r\nFinal-Recipient: rfc822; \(f.recipient.address)\r\n"
            if let orcpt = f.recipient.parameters["ORCPT"] {
                s += "Original-Recipient: \(orcpt.replacingFirstSemicolon())\r\n"
            }
            s += "Action: \(batch.action.rawValue)\r\n"
            s += "Status: \(f.status)\r\n"
            if let remote = f.remote { s += "Remote-MTA: dns; \(clean(remote))\r\n" }
            s += "Diagnostic-Code: \(diagnosticCode(f.diagnostic))\r\n"
            if let until = batch.retryUntil { s += "Will-Retry-Until: \(Timestamp.format(time_t(until), Timestamp.rfc5322))\r\n" }
        }
        return s
    }

    /// RFC 3464 §2.3.6: `smtp;` for an SMTP reply as ``Reply`` writes it (`550 5.1.1 text`),
    /// `x-postern;` for Postern's own words (a connection refused, a TLS policy unmet).
    static func diagnosticCode(_ text: String) -> String {
        let u = Array(text.utf8.prefix(4))
        let isReply = u.count == 4 && (0x32...0x35).contains(u[0]) && ASCII.isDigit(u[1]) && ASCII.isDigit(u[2])
            && (u[3] == UInt8(ascii: " ") || u[3] == UInt8(ascii: "-"))
        return (isReply ? "smtp; " : "x-postern; ") + clean(text)
    }

    /// `2 hours`, `35 minutes`, `12 seconds`: the time a message has waited, for people.
    static func hours(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        func unit(_ n: Int, _ name: String) -> String { "\(n) \(name)\(n == 1 ? "" : "s")" }
        if s >= 7200 { return unit(s / 3600, "hour") }
        if s >= 120 { return unit(s / 60, "minute") }
        return unit(s, "second")
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

extension DeliveryReport.Action {
    /// Postfix's subjects, which people and filters know.
    var subject: String {
        switch self {
        case .failed: "Undelivered Mail Returned to Sender"
        case .delayed: "Delayed Mail (still being retried)"
        case .relayed, .delivered: "Successful Mail Delivery Report"
        }
    }

    /// The Content-Description of the returned part.
    var returnedPart: String {
        switch self {
        case .failed: "Undelivered Message"
        case .delayed: "Delayed Message"
        case .relayed: "Relayed Message"
        case .delivered: "Delivered Message"
        }
    }
}

extension String {
    /// ORCPT is `addr-type;xtext`; the report field is `addr-type; address`.
    fileprivate func replacingFirstSemicolon() -> String {
        guard let i = firstIndex(of: ";") else { return self }
        return String(self[..<i]) + "; " + DeliveryReport.clean(XText.decode(self[index(after: i)...]))
    }
}
