import Glibc
import Shared

/// Postern's own `Received:` field (RFC 5321 §4.4), folded like Postfix's:
/// `from HELO (NAME [IP]) by HOST (Postern) with ESMTP id ID for <rcpt>; DATE`.
enum ReceivedHeader {
    static func make(envelope e: Envelope, hostname: String, now: time_t = time(nil)) -> String {
        var s = "Received: from \(e.helo.isEmpty ? "unknown" : e.helo) (\(e.clientName) [\(e.clientIP)])\r\n"
        s += "\tby \(hostname) (Postern) with \(e.receivedWith) id \(e.id)"
        if e.recipients.count == 1 { s += "\r\n\tfor <\(e.recipients[0].address)>" }
        s += "; \(rfc5322Date(now))\r\n"
        return s
    }

    /// `Thu, 26 Nov 2026 10:00:00 +0000 (UTC)`
    static func rfc5322Date(_ t: time_t) -> String {
        var t = t
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
