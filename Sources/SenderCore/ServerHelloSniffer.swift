import NIOCore

/// Reads the cipher suite out of the server's first TLS record as it passes by, for the
/// "TLS connection established" log line: swift-nio-ssl reports the protocol version and the
/// peer certificate, but not the cipher. The ServerHello is in clear in TLS 1.2 and 1.3 alike.
/// - SeeAlso: RFC 8446 §4.1.3, RFC 5246 §7.4.1.3
package final class ServerHelloSniffer: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    /// A ServerHello with the longest session id fits in 82 bytes; a record that does not
    /// yield the cipher within this much is not one, and is left alone.
    package static let maximumBuffered = 512

    /// The cipher suite's code point, once seen.
    private(set) var cipherSuite: UInt16?
    private var seen: [UInt8] = []
    private var finished = false

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !finished {
            let buffer = unwrapInboundIn(data)
            seen += buffer.readableBytesView.prefix(ServerHelloSniffer.maximumBuffered - seen.count)
            switch ServerHelloSniffer.parse(seen) {
            case .some(let suite): cipherSuite = suite; finished = true
            case .none where seen.count >= ServerHelloSniffer.maximumBuffered: finished = true
            case .none: break
            }
            if finished { seen = [] }
        }
        context.fireChannelRead(data)
    }

    /// `record: type(22) version(2) length(2) | handshake: type(2) length(3) version(2)
    /// random(32) session_id<0..32> cipher_suite(2)`; nil while incomplete or not a ServerHello.
    package static func parse(_ b: [UInt8]) -> UInt16? {
        guard b.count >= 44, b[0] == 22, b[5] == 2 else { return nil }
        let sessionLength = Int(b[43])
        guard sessionLength <= 32, b.count >= 46 + sessionLength else { return nil }
        return UInt16(b[44 + sessionLength]) << 8 | UInt16(b[45 + sessionLength])
    }
}
