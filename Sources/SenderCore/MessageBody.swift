import NIOCore
import PosternMIME
import PosternSpool
import PosternUtil

/// The bytes of a job's message: in memory (a converted message, tests), or left in the queue
/// file and read a chunk at a time as they go out, so that the deliveries in flight hold a
/// chunk each, not a message each (senderd runs up to `DeliveryService.workers` at once).
package enum MessageBody: Sendable {
    case bytes(ByteBuffer)
    case spooled(SpooledMessage)

    /// What a delivery reads and writes at a time: large enough that a 1 MB message is four
    /// reads and writes (at 64 KB strace counted 19 preads and 22 writes per message), small
    /// enough that the connections sending at once (`[Sender] MaxConnections` per next hop)
    /// hold a few MB; deliveries waiting for a connection hold none.
    package static let chunk = 256 * 1024

    package var count: Int {
        switch self {
        case .bytes(let b): return b.readableBytes
        case .spooled(let m): return m.count
        }
    }

    /// The message in pieces of at most `chunk` octets, in order; `body` is called with each
    /// and whether it is the last (once, with an empty piece, for an empty message).
    package func forEachChunk(chunk: Int = MessageBody.chunk, _ body: (ByteBuffer, _ last: Bool) async throws -> Void) async throws {
        switch self {
        case .bytes(let b):
            try await body(b, true)
        case .spooled(let m):
            var at = 0
            repeat {
                let piece = try m.read(from: at, length: chunk)
                at += piece.readableBytes
                try await body(piece, at >= m.count)
            } while at < m.count
        }
    }

    /// The whole message at once (8-bit conversion, DSNs).
    package func whole() throws(SpoolError) -> ByteBuffer {
        switch self {
        case .bytes(let b): return b
        case .spooled(let m): return try m.readAll()
        }
    }

    /// Whether an octet above 127 is in the message, read a chunk at a time up to the first.
    package func containsEightBit(chunk: Int = MessageBody.chunk) throws(SpoolError) -> Bool {
        switch self {
        case .bytes(let b): return EightBitScan.contains(b)
        case .spooled(let m):
            var at = 0
            while at < m.count {
                let piece = try m.read(from: at, length: chunk)
                if EightBitScan.contains(piece) { return true }
                at += piece.readableBytes
            }
            return false
        }
    }
}
