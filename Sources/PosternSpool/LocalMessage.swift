import Glibc
import NIOCore
import PosternSMTP

/// Mail Postern writes itself (DSNs, notifications): a new queue file in `scan/`, routed by the
/// rules like any other message (`from:""` and FilterMail take `[Sender] Address`), and
/// durable before the caller records what it reports. Its envelope says `received-with local`;
/// scannerd does not scan such mail (a notification about a notification could loop).
public enum LocalMessage {
    /// Writes `body` (header and body, CRLF line ends) from `sender` to `recipients`; returns the
    /// new queue id. Blocking.
    public static func write(_ body: ByteBuffer, from sender: String, to recipients: [String], id: String,
                             hostname: String, layout: SpoolLayout) throws -> String {
        var body = body
        var inspector = HeaderInspector()
        inspector.feed(body)
        let writer = try SpoolWriter(layout: layout, id: id)
        do {
            try writer.append(&body)
            let envelope = Envelope(
                id: id, arrival: timespec.now.seconds, mailProtocol: .smtp, receivedWith: "local", clientIP: "",
                clientName: "localhost", helo: hostname, mailFrom: sender, recipients: recipients.map { Recipient(address: $0) },
                size: writer.messageBytes, bodyHash: inspector.bodyHash())
            try writer.finish(envelope: envelope)
            try writer.commit(to: .scan)
        } catch {
            writer.abort()
            throw error
        }
        return id
    }

    /// Writes a failure DSN for `failures` of the message `e` to its sender; `headersOnly` for
    /// a message blocked for its content.
    public static func writeReport(original e: Envelope, failures: [DeliveryReport.Failure], message: ByteBuffer,
                                   hostname: String, layout: SpoolLayout, headersOnly: Bool = false) throws -> String {
        let id = QueueID.make(now: timespec.now)
        let body = DeliveryReport.message(original: e, failures: failures, originalMessage: message,
                                          hostname: hostname, reportID: id, headersOnly: headersOnly)
        return try write(body, from: "", to: [e.mailFrom], id: id, hostname: hostname, layout: layout)
    }
}
