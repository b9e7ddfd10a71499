import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

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
                id: id, arrival: WallClock.seconds, mailProtocol: .smtp, receivedWith: "local", clientIP: "",
                clientName: "localhost", helo: hostname, mailFrom: sender, recipients: recipients.map { Recipient(address: $0) },
                size: writer.messageBytes, bodyHash: inspector.bodyHash())
            try writer.finish(envelope: envelope)
            layout.giveToDaemons(layout.path(id, .incoming))
            try writer.commit(to: .scan)
        } catch {
            writer.abort()
            throw error
        }
        return id
    }

    /// Writes the DSN `batch` to the sender of its message; `headersOnlyBecause` for a message
    /// that must not go back whole (blocked for its content, not convertible to 7 bits).
    public static func writeReport(_ batch: DeliveryReport.Batch, messageSize: Int, reading read: (Int) throws -> ByteBuffer,
                                   hostname: String, layout: SpoolLayout, headersOnlyBecause: String? = nil) throws -> String {
        let id = QueueID.make(now: WallClock.now)
        let body = try DeliveryReport.message(batch, originalSize: messageSize, reading: read, hostname: hostname, reportID: id,
                                              headersOnlyBecause: headersOnlyBecause)
        return try write(body, from: "", to: [batch.original.mailFrom], id: id, hostname: hostname, layout: layout)
    }
}
