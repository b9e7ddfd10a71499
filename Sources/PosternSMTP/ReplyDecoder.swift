import NIOCore

/// Client-side framer + parser: bytes from an SMTP/LMTP server in, whole `Reply` values out.
public struct ReplyDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Reply
    private var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
    private var parser = ReplyParser()

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let framed = framer.next(from: &buffer) else { return .needMoreData }
        switch framed {
        case .line(let l), .bareLF(let l):   // servers that end replies with LF alone are tolerated
            if let reply = try parser.feed(Substring(String(buffer: l))) {
                context.fireChannelRead(wrapInboundOut(reply))
            }
            return .continue
        case .overlong:
            throw ReplyParseError(hint: "reply line too long")
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
