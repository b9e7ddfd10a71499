import NIOCore

/// One line found by `LineFramer`.
public enum FramedLine: Sendable, Equatable {
    /// A line ended by CRLF (terminator not included).
    case line(ByteBuffer)
    /// A line ended by a bare LF: refused by SMTP servers (RFC 5321 §2.3.8).
    case bareLF(ByteBuffer)
    /// A line longer than the limit; its bytes were skipped up to the next LF.
    case overlong
}

/// Finds CRLF-terminated lines in a byte stream with a hard length limit, so that a peer can
/// never make us buffer without bound (swift-nio-extras' LineBasedFrameDecoder has no limit and
/// treats a bare LF as a line end).
public struct LineFramer: Sendable {
    public let limit: Int
    private var skipping = false

    public init(limit: Int) { self.limit = limit }

    /// Takes the next line out of `buffer`, or returns nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) -> FramedLine? {
        while true {
            let view = buffer.readableBytesView
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.readableBytes > limit {
                    skipping = true
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                }
                return nil
            }
            let length = lf - view.startIndex
            if skipping || length + 1 > limit {
                buffer.moveReaderIndex(forwardBy: length + 1)
                skipping = false
                return .overlong
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
                line.moveWriterIndex(to: line.writerIndex - 1)
                return .line(line)
            }
            return .bareLF(line)
        }
    }
}
