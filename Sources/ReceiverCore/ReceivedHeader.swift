import Glibc
import PosternSpool
import PosternUtil

/// Postern's own `Received:` field (RFC 5321 §4.4), folded like Postfix's:
/// `from HELO (NAME [IP]) by HOST (Postern) with ESMTP id ID for <rcpt>; DATE`.
package enum ReceivedHeader {
    package static func make(envelope e: Envelope, hostname: String, now: time_t = time(nil)) -> String {
        var s = "Received: from \(e.helo.isEmpty ? "unknown" : e.helo) (\(e.clientName) [\(e.clientIP)])\r\n"
        s += "\tby \(hostname) (Postern) with \(e.receivedWith) id \(e.id)"
        if e.recipients.count == 1 { s += "\r\n\tfor <\(e.recipients[0].address)>" }
        s += "; \(Timestamp.format(now, Timestamp.rfc5322 + " (%Z)"))\r\n"
        return s
    }
}
