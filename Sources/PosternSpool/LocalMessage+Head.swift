import Glibc
import PosternUtil

extension LocalMessage {
    /// The origination fields of mail Postern writes itself, in one order for DSNs and
    /// notifications (RFC 5322 §3.6). `autoSubmitted` is `auto-replied` for reports and
    /// `auto-generated` for the rest: nobody's vacation program answers either (RFC 3834 §5).
    package static func head(date: time_t, from: String, to: String, subject: String, messageID: String,
                             autoSubmitted: String) -> String {
        "Date: \(Timestamp.format(date, Timestamp.rfc5322))\r\n"
            + "From: \(from)\r\nTo: \(to)\r\nSubject: \(subject)\r\nMessage-ID: \(messageID)\r\n"
            + "Auto-Submitted: \(autoSubmitted)\r\n"
    }
}
