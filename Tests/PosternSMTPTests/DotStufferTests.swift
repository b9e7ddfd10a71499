import NIOCore
@testable import PosternSMTP
import PosternTestSupport
import PosternUtil
import Testing

/// Encoding for the wire and back must give the same bytes.
@Suite struct DotStufferTests {
    @Test(arguments: [
        ("", ".\r\n"),
        ("a\r\n", "a\r\n.\r\n"),
        (".\r\n", "..\r\n.\r\n"),
        ("a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n"),
        ("no final newline", "no final newline\r\n.\r\n"),
        (".", "..\r\n.\r\n"),
    ])
    func encodes(_ message: String, _ wire: String) {
        var s = DotStuffer()
        var out = ByteBuffer()
        s.encode(ByteBuffer(string: message), into: &out)
        s.finish(into: &out)
        #expect(String(buffer: out) == wire)
    }

    @Test(arguments: ["a\r\n", ".\r\n..\r\n...\r\n", "x\r\n.\r\n.y\r\n", "\r\n\r\n.\r\n"])
    func roundTrips(_ message: String) {
        var s = DotStuffer()
        var wire = ByteBuffer()
        // Split the input at every position to cover chunk boundaries.
        let bytes = Array(message.utf8)
        for cut in 0...bytes.count {
            s = DotStuffer()
            wire.clear()
            s.encode(ByteBuffer(bytes: bytes[..<cut]), into: &wire)
            s.encode(ByteBuffer(bytes: bytes[cut...]), into: &wire)
            s.finish(into: &wire)
            var d = DataDecoder()
            var back = ByteBuffer()
            #expect(d.decode(wire, into: &back) == .end(consumed: wire.readableBytes))
            #expect(String(buffer: back) == message)
        }
    }
}
