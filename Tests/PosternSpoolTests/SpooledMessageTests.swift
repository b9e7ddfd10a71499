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
}
