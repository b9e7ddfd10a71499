import NIOCore
import PosternSMTP

/// LineFramer at a small limit (so that the overlong paths are reached) and at the command
/// limit, fed the input whole and in random pieces.
///
/// Invariants: the lines do not depend on how the bytes arrive; no line holds an LF or is over
/// the limit; the framer never keeps more than the limit buffered while it waits for an LF.
enum LineFramerFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        for limit in [16, SMTPDefaults.maxCommandLine] {
            let whole = try frame(data, limit: limit, chunks: [0..<data.count])
            var chunker = Chunker(data, salt: UInt64(limit))
            let pieces = try frame(data, limit: limit, chunks: chunker.ranges(data.count))
            try expect(whole == pieces, "limit \(limit): lines depend on the chunking: \(whole.count) vs \(pieces.count) lines")
        }
    }

    private static func frame(_ data: UnsafeRawBufferPointer, limit: Int, chunks: [Range<Int>]) throws(FuzzFailure) -> [FramedLine] {
        var framer = LineFramer(limit: limit)
        var buffer = ByteBuffer()
        var out: [FramedLine] = []
        for range in chunks {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: data[range]))
            while let line = framer.next(from: &buffer) {
                switch line {
                case .line(let l), .bareLF(let l):
                    try expect(!l.readableBytesView.contains(0x0A), "a line holds an LF")
                    try expect(l.readableBytes + 1 <= limit, "a line of \(l.readableBytes) octets passed the limit \(limit)")
                case .overlong:
                    break
                }
                out.append(line)
            }
            try expect(buffer.readableBytes <= limit, "\(buffer.readableBytes) octets buffered at limit \(limit)")
            buffer.discardReadBytes()
        }
        return out
    }
}
