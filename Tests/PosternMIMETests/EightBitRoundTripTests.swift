@testable import PosternMIME
import PosternTestSupport
import PosternUtil
import Testing

/// The conversion on generated messages: whatever the nesting and the mix of 7-bit and 8-bit
/// parts, the result is 7-bit, has the same parts, every 7-bit part is byte for byte what it
/// was, and every converted part decodes to the octets it had.
@Suite struct EightBitRoundTripTests {
    @Test func generatedMessagesRoundTrip() throws {
        var generator = MessageGenerator(rng: SplitMix64(seed: 0x8B17))
        var converted = 0
        var encodings: Set<TransferEncoding> = []
        for _ in 0..<300 {
            let message = generator.message()
            let before = MIMEParser().parts(of: message)
            guard let result = try EightBitDowngrade.convert(message) else {
                #expect(!EightBitScan.contains(message))
                continue
            }
            converted += 1
            encodings.formUnion(result.conversions.map(\.encoding))
            let out = result.message
            #expect(MIMEFixture.isSevenBit(out))
            let after = MIMEParser().parts(of: out)
            try #require(after.count == before.count)
            #expect(after.map(\.contentType) == before.map(\.contentType))
            #expect(after.map(\.depth) == before.map(\.depth))
            for (old, new) in zip(before, after) {
                if EightBitScan.contains(Array(old.encodedBody)) {
                    #expect(new.decodedBody() == Array(old.encodedBody))
                    #expect(MIMEFixture.lines(Array(new.encodedBody)).allSatisfy { $0.count <= 76 })
                } else {
                    #expect(new.encodedBody.elementsEqual(old.encodedBody))
                }
            }
            #expect(result.conversions.count == before.filter { EightBitScan.contains(Array($0.encodedBody)) }.count)
        }
        #expect(converted > 100)
        #expect(encodings == [.quotedPrintable, .base64])
    }
}

/// Random MIME messages: nested multiparts and message/rfc822, leaves of several types and
/// transfer encodings, bodies from plain ASCII to random octets. Header fields are 7-bit, so
/// every message can be converted.
struct MessageGenerator {
    var rng: SplitMix64
    private var boundaries = 0

    init(rng: SplitMix64) { self.rng = rng }

    mutating func message() -> [UInt8] {
        bytes("Subject: generated\r\nMIME-Version: 1.0\r\n") + entity(depth: 0)
    }

    private mutating func entity(depth: Int) -> [UInt8] {
        let roll = Int.random(in: 0..<10, using: &rng)
        if depth < 3 && roll < 2 { return multipart(depth: depth) }
        if depth < 3 && roll == 2 {
            let encoding = Bool.random(using: &rng) ? "Content-Transfer-Encoding: 8bit\r\n" : ""
            return bytes("Content-Type: message/rfc822\r\n\(encoding)\r\nSubject: inner\r\nMIME-Version: 1.0\r\n") + entity(depth: depth + 1)
        }
        return leaf()
    }

    private mutating func multipart(depth: Int) -> [UInt8] {
        boundaries += 1
        let boundary = "=_b\(boundaries)_\(UInt32.random(in: 0...UInt32.max, using: &rng))"
        var out = bytes("Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n")
        if Bool.random(using: &rng) { out += bytes("Content-Transfer-Encoding: 8bit\r\n") }
        out += bytes("\r\n")
        if Bool.random(using: &rng) { out += text(high: 1, lines: 1) + bytes("\r\n") }   // preamble
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            out += bytes("--\(boundary)\r\n") + entity(depth: depth + 1) + bytes("\r\n")
        }
        out += bytes("--\(boundary)--\r\n")
        if Bool.random(using: &rng) { out += text(high: 1, lines: 1) }                   // epilogue
        return out
    }

    private mutating func leaf() -> [UInt8] {
        let type = ["text/plain; charset=utf-8", "text/html", "application/octet-stream", "image/png"].randomElement(using: &rng)!
        let encoding = [nil, "7bit", "8bit", "binary"].randomElement(using: &rng)!
        var out = bytes("Content-Type: \(type)\r\n")
        if let encoding { out += bytes("Content-Transfer-Encoding: \(encoding)\r\n") }
        out += bytes("\r\n")
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: out += text(high: 0, lines: Int.random(in: 0...5, using: &rng))
        case 1: out += text(high: 2, lines: Int.random(in: 1...5, using: &rng))
        case 2: out += text(high: 40, lines: Int.random(in: 1...5, using: &rng))
        default: out += (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        if Bool.random(using: &rng) { out += bytes("\r\n") }
        return out
    }

    /// CRLF-separated lines (none after the last) where about `high` in a hundred octets are
    /// above 127; lines up to 200 octets, some ending in white space.
    private mutating func text(high: Int, lines: Int) -> [UInt8] {
        var out: [UInt8] = []
        for n in 0..<lines {
            if n > 0 { out += [0x0D, 0x0A] }
            for _ in 0..<Int.random(in: 0...200, using: &rng) {
                if Int.random(in: 0..<100, using: &rng) < high {
                    out.append(UInt8.random(in: 0x80...0xFF, using: &rng))
                } else {
                    out.append(Array(" \tabcdefghijklmnopqrstuvwxyz=.-_0123456789".utf8).randomElement(using: &rng)!)
                }
            }
        }
        return out
    }

    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
}
