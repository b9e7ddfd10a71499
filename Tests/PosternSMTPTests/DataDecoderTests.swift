import NIOCore
@testable import PosternSMTP
import PosternTestSupport
import PosternUtil
import Testing

/// The DATA phase decoder: end-of-data detection, dot-unstuffing, smuggling guards.
@Suite struct DataDecoderTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let wire: String
        let message: String
        let rest: String
        let bare: Bool
        var testDescription: String { wire.debugDescription }
    }

    static let cases: [Case] = [
        Case(wire: ".\r\n", message: "", rest: "", bare: false),
        Case(wire: "a\r\n.\r\n", message: "a\r\n", rest: "", bare: false),
        Case(wire: "..\r\n.\r\n", message: ".\r\n", rest: "", bare: false),
        Case(wire: "...x\r\n.\r\nQUIT\r\n", message: "..x\r\n", rest: "QUIT\r\n", bare: false),
        Case(wire: ".x\r\n.\r\n", message: "x\r\n", rest: "", bare: false),
        Case(wire: "a\r\n. \r\n.\r\n", message: "a\r\n \r\n", rest: "", bare: false),
        // Smuggling attempts: none of these end the data; only the final CRLF.CRLF does.
        Case(wire: "a\n.\nMAIL FROM:<x>\r\n.\r\n", message: "a\n.\nMAIL FROM:<x>\r\n", rest: "", bare: true),
        Case(wire: "a\n.\r\nb\r\n.\r\n", message: "a\n.\r\nb\r\n", rest: "", bare: true),
        Case(wire: "a\r\n.\nb\r\n.\r\n", message: "a\r\n\nb\r\n", rest: "", bare: true),
        Case(wire: "a\r.\r\nb\r\n.\r\n", message: "a\r.\r\nb\r\n", rest: "", bare: true),
        Case(wire: "a\r\n.\rb\r\n.\r\n", message: "a\r\n\rb\r\n", rest: "", bare: true),
    ]

    @Test(arguments: cases)
    func decodesWholeInput(_ c: Case) {
        var d = DataDecoder()
        var out = ByteBuffer()
        let input = ByteBuffer(string: c.wire)
        let r = d.decode(input, into: &out)
        guard case .end(let consumed) = r else {
            Issue.record("no end of data found")
            return
        }
        #expect(String(buffer: out) == c.message)
        #expect(String(c.wire.utf8.dropFirst(consumed))! == c.rest)
        #expect(d.sawBareNewline == c.bare)
        #expect(d.size == c.message.utf8.count)
    }

    @Test(arguments: cases)
    func decodesByteByByte(_ c: Case) {
        var d = DataDecoder()
        var out = ByteBuffer()
        var ended = false
        for b in c.wire.utf8 where !ended {
            if case .end = d.decode(ByteBuffer(bytes: [b]), into: &out) { ended = true }
        }
        #expect(ended)
        #expect(String(buffer: out) == c.message)
        #expect(d.sawBareNewline == c.bare)
    }

    @Test func needsMoreWithoutTerminator() {
        var d = DataDecoder()
        var out = ByteBuffer()
        #expect(d.decode(ByteBuffer(string: "a\r\n.\r"), into: &out) == .needMore)
        #expect(String(buffer: out) == "a\r\n")
        #expect(d.decode(ByteBuffer(string: "\n"), into: &out) == .end(consumed: 1))
        #expect(String(buffer: out) == "a\r\n")
    }

    @Test func measuresLongestLine() {
        var d = DataDecoder()
        var out = ByteBuffer()
        let long = String(repeating: "x", count: 1200)
        _ = d.decode(ByteBuffer(string: "short\r\n\(long)\r\n.\r\n"), into: &out)
        #expect(d.longestLine == 1202)
    }
}
