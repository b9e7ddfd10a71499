import NIOCore
import NIOTestUtils
@testable import PosternSMTP
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct LineFramerTests {
    @Test func framesCRLFLines() {
        var f = LineFramer(limit: 100)
        var b = ByteBuffer(string: "EHLO a\r\nMAIL FROM:<>\r\nRCPT")
        #expect(f.next(from: &b) == .line(ByteBuffer(string: "EHLO a")))
        #expect(f.next(from: &b) == .line(ByteBuffer(string: "MAIL FROM:<>")))
        #expect(f.next(from: &b) == nil)
        b.writeString(" TO:<x@y>\r\n")
        #expect(f.next(from: &b) == .line(ByteBuffer(string: "RCPT TO:<x@y>")))
    }

    @Test func reportsBareLF() {
        var f = LineFramer(limit: 100)
        var b = ByteBuffer(string: "NOOP\nQUIT\r\n")
        #expect(f.next(from: &b) == .bareLF(ByteBuffer(string: "NOOP")))
        #expect(f.next(from: &b) == .line(ByteBuffer(string: "QUIT")))
    }

    @Test func boundsLineLength() {
        var f = LineFramer(limit: 16)
        var b = ByteBuffer(string: String(repeating: "x", count: 40))
        #expect(f.next(from: &b) == nil)
        #expect(b.readableBytes == 0)   // not buffered without bound
        b.writeString("yyy\r\nNOOP\r\n")
        #expect(f.next(from: &b) == .overlong)
        #expect(f.next(from: &b) == .line(ByteBuffer(string: "NOOP")))
    }

    @Test func verifiesReplyDecoder() throws {
        let input = ByteBuffer(string: "250-host\r\n250-PIPELINING\r\n250 SIZE 100\r\n550 5.7.1 no\r\n")
        let expected = [
            Reply(250, nil, lines: ["host", "PIPELINING", "SIZE 100"]),
            Reply(550, EnhancedStatus(5, 7, 1), "no"),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(input, expected)]) { ReplyDecoder() }
    }
}
