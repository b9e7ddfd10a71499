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

    static func wire(_ s: inout DotStuffer, _ message: [UInt8], cuts: [Int]) -> ByteBuffer {
        var out = ByteBuffer()
        var at = 0
        for cut in cuts + [message.count] {
            s.encode(ByteBuffer(bytes: message[at..<cut]), into: &out)
            at = cut
        }
        s.finish(into: &out)
        return out
    }

    /// Line by line (skipping from LF to LF) must stuff exactly as octet by octet, into one
    /// buffer or as slices, whatever the cuts; and the decoder must give the message back.
    @Test func skippingAheadMatchesOctetByOctet() {
        var rng = SplitMix64(seed: 0xD07)
        for _ in 0..<2000 {
            let message = DataDecoderTests.randomWire(&rng).dropLast(3).map { $0 }   // keep a final CRLF or not
            var s = DotStuffer()
            let expected = Self.wire(&s, message, cuts: Array(0..<message.count))
            s = DotStuffer()
            #expect(Self.wire(&s, message, cuts: []) == expected)
            let cut = Int.random(in: 0...message.count, using: &rng)
            s = DotStuffer()
            var parts: [ByteBuffer] = []
            s.encode(ByteBuffer(bytes: message[..<cut]), into: &parts)
            s.encode(ByteBuffer(bytes: message[cut...]), into: &parts)
            var joined = ByteBuffer()
            for var p in parts { joined.writeBuffer(&p) }
            s.finish(into: &joined)
            #expect(joined == expected)
            var d = DataDecoder()
            var back = ByteBuffer()
            #expect(d.decode(expected, into: &back) == .end(consumed: expected.readableBytes))
            let endsInCRLF = message.isEmpty || message.suffix(2).elementsEqual("\r\n".utf8)
            #expect(Array(back.readableBytesView) == message + (endsInCRLF ? [] : Array("\r\n".utf8)))
        }
    }

    /// Long runs go out as slices of the message (its own storage, not a copy); short runs and
    /// the added dots are gathered, so dotted lines do not make one write each.
    @Test func longRunsAreSlicesShortOnesGathered() {
        let long = String(repeating: "y", count: DotStuffer.minSlice)
        let message = ByteBuffer(string: ".a\r\n.b\r\n\(long)\r\n.c\r\n")
        var s = DotStuffer()
        var parts: [ByteBuffer] = []
        s.encode(message, into: &parts)
        #expect(parts.map { String(buffer: $0) } == ["..a\r\n.", ".b\r\n\(long)\r\n", "..c\r\n"])
        message.withUnsafeReadableBytes { whole in
            parts[1].withUnsafeReadableBytes { slice in
                #expect(slice.baseAddress == whole.baseAddress! + ".a\r\n".utf8.count)
            }
        }
    }
}
