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

    /// Random text of ordinary runs (long enough for the word-at-a-time scan), dots, CRs and
    /// LFs; ends in the terminator so that every input has an end.
    static func randomWire(_ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<Int.random(in: 1...60, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: out += Array(repeating: UInt8(ascii: "x"), count: Int.random(in: 1...40, using: &rng))
            case 1: out += [UInt8(ascii: ".")]
            case 2: out += [UInt8(ascii: "\r")]
            case 3: out += [UInt8(ascii: "\n")]
            default: out += Array("\r\n".utf8)
            }
        }
        return out + Array("\r\n.\r\n".utf8)
    }

    /// Fed one octet at a time the decoder never skips ahead, so that is the reference the
    /// skipping (whole input, or cut at random places) must match in every respect.
    @Test func skippingAheadMatchesOctetByOctet() {
        var rng = SplitMix64(seed: 0xDA7A)
        for _ in 0..<2000 {
            let wire = Self.randomWire(&rng)
            var reference = DataDecoder()
            var expected = ByteBuffer()
            var expectedEnd = -1
            for (k, b) in wire.enumerated() where expectedEnd < 0 {
                if case .end = reference.decode(ByteBuffer(bytes: [b]), into: &expected) { expectedEnd = k + 1 }
            }
            var d = DataDecoder()
            var out = ByteBuffer()
            var at = 0
            var end = -1
            while at < wire.count && end < 0 {
                let cut = min(wire.count, at + Int.random(in: 1...wire.count, using: &rng))
                if case .end(let consumed) = d.decode(ByteBuffer(bytes: wire[at..<cut]), into: &out) { end = at + consumed }
                at = cut
            }
            #expect(end == expectedEnd)
            #expect(out == expected)
            #expect(d.size == reference.size)
            #expect(d.sawBareNewline == reference.sawBareNewline)
            #expect(d.longestLine == reference.longestLine)
        }
    }
}
