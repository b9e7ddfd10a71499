import Glibc
import NIOCore
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// senderd reads the message a chunk at a time from the queue file it has open.
@Suite struct SpooledMessageTests {
    func write(_ spool: borrowing TempSpool, _ message: String) throws -> String {
        try spool.write(message) { id, size in Envelope(id: id, arrival: 1, recipients: [Recipient(address: "a@example.com")], size: size) }
    }

    @Test func chunksAreTheMessageInOrderAndNothingElse() throws {
        let spool = try TempSpool()
        let message = "Subject: x\r\n\r\n" + String(repeating: "0123456789\r\n", count: 1000)
        let id = try write(spool, message)
        let (file, m) = try SpoolFile.readForDelivery(path: spool.layout.path(id, .scan))
        #expect(file.envelope.id == id)
        #expect(m.count == message.utf8.count)
        for chunk in [1, 7, 4096, message.utf8.count, message.utf8.count + 5] {
            var joined = ByteBuffer()
            var at = 0
            while at < m.count {
                var piece = try m.read(from: at, length: chunk)
                #expect(piece.readableBytes == min(chunk, m.count - at))
                at += piece.readableBytes
                joined.writeBuffer(&piece)
            }
            #expect(String(buffer: joined) == message)
        }
        #expect(String(buffer: try m.readAll()) == message)
        #expect(try m.read(from: m.count, length: 10).readableBytes == 0)
    }

    /// The open descriptor still reads the message after the file is renamed or removed
    /// (senderd defers or finishes it while another hop may still be reading).
    @Test func readsOnAfterTheFileIsGone() throws {
        let spool = try TempSpool()
        let id = try write(spool, "Subject: y\r\n\r\nbody\r\n")
        let (_, m) = try SpoolFile.readForDelivery(path: spool.layout.path(id, .scan))
        #expect(unlink(spool.layout.path(id, .scan)) == 0)
        #expect(String(buffer: try m.readAll()) == "Subject: y\r\n\r\nbody\r\n")
    }

    /// A file shorter than its header says (damaged after it was read) is an error, never a
    /// message cut short without notice.
    @Test func aFileCutShortIsAnError() throws {
        let spool = try TempSpool()
        let id = try write(spool, "Subject: z\r\n\r\n" + String(repeating: "x", count: 5000) + "\r\n")
        let path = spool.layout.path(id, .scan)
        let (_, m) = try SpoolFile.readForDelivery(path: path)
        #expect(truncate(path, off_t(SpoolFile.headerLength + 100)) == 0)
        #expect(throws: SpoolError.self) { try m.read(from: 0, length: 4096) }
        #expect(try m.read(from: 0, length: 50).readableBytes == 50)
    }

    /// A message written in these pieces, and whether a line of it starts with a dot: the first
    /// octet, or one after a line feed (bare or not), also when the pieces split the two.
    static let dotCases: [([String], Bool)] = [
        (["Subject: a\r\n\r\nno dot at a line start.\r\nend. of it..\r\n"], false),
        (["Subject: a\r\n\r\n.leading\r\n"], true),
        ([".first octet\r\n"], true),
        (["Subject: a\r\n\r\nbare\n.after a bare LF\r\n"], true),
        (["Subject: a\r\n\r\nline\r\n", ".next piece\r\n"], true),
        (["Subject: a\r\n\r\nline\r", "\n.x\r\n"], true),
        (["Subject: a\r\n\r\nx.", ".y\r\n", "z.\r\n"], false),
        (["Subject: a\r\n\r\nbare\r.after a bare CR\r\n"], false),
        (["", "Subject: a\r\n\r\n", "", "ok\r\n"], false),
    ]

    /// The writer records in the envelope (`dot-lines`) what senderd's own search of the file
    /// finds, so senderd need not search; a file without the line is searched as before.
    @Test(arguments: dotCases)
    func theEnvelopeSaysWhetherALineStartsWithADot(pieces: [String], dots: Bool) throws {
        let spool = try TempSpool()
        let id = QueueID.make()
        let w = try SpoolWriter(layout: spool.layout, id: id)
        for piece in pieces {
            var b = ByteBuffer(string: piece)
            try w.append(&b)
        }
        let message = pieces.joined()
        // The caller's word is not taken: the writer's is.
        var envelope = Envelope(id: id, arrival: 1, recipients: [Recipient(address: "a@example.com")], size: message.utf8.count)
        envelope.dotLines = !dots
        try w.finish(envelope: envelope)
        try w.commit(to: .scan)
        let path = spool.layout.path(id, .scan)
        let (file, m) = try SpoolFile.readForDelivery(path: path)
        #expect(file.envelope.dotLines == dots)
        #expect(m.dotLines == dots)
        let tail = Array(message.utf8.suffix(2))
        #expect(m.tailIfNoLineStartsWithDot() == (dots ? nil : tail))

        // Without the line (a file from before it), senderd's search of the file agrees.
        let line = "dot-lines \(dots ? "yes" : "no")\n"
        #expect(try TextFile.read(path).contains(line))
        try TempSpool.edit(path) { $0.replacingOccurrences(of: line, with: "") }
        let (old, searched) = try SpoolFile.readForDelivery(path: path)
        #expect(old.envelope.dotLines == nil)
        #expect(searched.tailIfNoLineStartsWithDot() == (dots ? nil : tail))
    }

    /// senderd takes the envelope's word and does not search: a `dot-lines yes` sends even a
    /// message without such a line through the dot-stuffer (which then doubles nothing).
    @Test func theEnvelopesWordIsTaken() throws {
        let spool = try TempSpool()
        let message = "Subject: s\r\n\r\n" + String(repeating: "no dots\r\n", count: 100)
        let path = spool.layout.path(try write(spool, message), .scan)
        #expect(try SpoolFile.readForDelivery(path: path).1.tailIfNoLineStartsWithDot() == Array("\r\n".utf8))
        try TempSpool.edit(path) { $0.replacingOccurrences(of: "dot-lines no\n", with: "dot-lines yes\n") }
        let (file, m) = try SpoolFile.readForDelivery(path: path)
        #expect(file.envelope.dotLines == true)
        #expect(m.tailIfNoLineStartsWithDot() == nil)
    }
}
