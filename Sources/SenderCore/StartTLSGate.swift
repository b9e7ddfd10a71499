import NIOCore
import NIOSSL

/// Sits in front of the reply decoder from the moment STARTTLS is sent until its reply has
/// been read, and puts TLS in place the instant a 220 ends: nothing the server sent in clear
/// can be read as if it had come inside TLS (RFC 3207 §4.2; the client side of
/// CVE-2011-0411, Postfix smtp_proto.c "STARTTLS ... vstream_fpurge").
///
/// Bytes after the final line of the reply, in the same read, are a protocol violation (the
/// server must wait for our ClientHello), and the connection is closed with an error.
///
/// `handshake` succeeds once TLS is up: the client waits for it before EHLO, so that a failed
/// handshake is told apart from a refused EHLO.
package final class StartTLSGate: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let context: NIOSSLContext
    private let serverHostname: String?
    private let handshake: EventLoopPromise<Void>
    /// The first bytes of the line being read: the code and the separator.
    private var lineStart: [UInt8] = []
    private var done = false
    /// Whether `handshake` is still this handler's to complete.
    private var ownsPromise = true

    package init(context: NIOSSLContext, serverHostname: String?, handshake: EventLoopPromise<Void>) {
        self.context = context
        self.serverHostname = serverHostname
        self.handshake = handshake
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        if ownsPromise { handshake.fail(StartTLSError(hint: "no TLS handshake")) }
        ownsPromise = false
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !done else { context.fireChannelRead(data); return }
        var finalLineEnd: Int?
        for (offset, byte) in buffer.readableBytesView.enumerated() {
            if byte == UInt8(ascii: "\n") {
                // "220 text" or "220" alone ends the reply; "220-text" goes on.
                if lineStart.count < 4 || lineStart[3] != UInt8(ascii: "-") {
                    finalLineEnd = offset
                    break
                }
                lineStart = []
            } else if lineStart.count < 4 {
                lineStart.append(byte)
            }
        }
        guard let end = finalLineEnd else {
            context.fireChannelRead(data)
            return
        }
        done = true
        if end + 1 < buffer.readableBytes {
            context.fireErrorCaught(StartTLSError(hint: "next hop sent data after its reply to STARTTLS"))
            context.close(promise: nil)
            return
        }
        if lineStart.starts(with: Array("220".utf8)) {
            do {
                let tls = try NIOSSLClientHandler(context: self.context, serverHostname: serverHostname)
                try context.pipeline.syncOperations.addHandler(tls, position: .first)
                try context.pipeline.syncOperations.addHandler(HandshakeWatcher(handshake), position: .after(tls))
                ownsPromise = false
                try context.pipeline.syncOperations.addHandler(ServerHelloSniffer(), position: .first)
            } catch {
                context.fireErrorCaught(error)
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
        // swift-nio-ssl, now in front, swallows this read's channelReadComplete (no plaintext
        // came out of it), and NIOAsyncChannel hands replies over only on one.
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// STARTTLS could not be carried out.
package struct StartTLSError: Error, CustomStringConvertible {
    package var hint: String
    package var description: String { hint }
}
