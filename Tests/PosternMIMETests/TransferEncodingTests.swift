@testable import PosternMIME
import PosternTestSupport
import PosternUtil
import Testing

/// The encoders on their own: exact output for the rules of RFC 2045 §6.7 and §6.8, and
/// decoding by ``TransferDecoding`` gives the input back for any octets.
@Suite struct TransferEncodingTests {
    @Test(arguments: [
        ("caf\u{E9}", "caf=E9"),
        ("a=b", "a=3Db"),
        ("line\nnext", "line\r\nnext"),                    // CRLF stays a line break in text
        ("trailing \nspace\t", "trailing=20\r\nspace=09"),  // rule 3: no white space at a line end
        ("bare\rcr", "bare=0Dcr"),
        ("nul\u{0}", "nul=00"),
        ("ends with crlf\n", "ends with crlf\r\n"),
    ])
    func quotedPrintable(_ input: String, _ expected: String) {
        var out: [UInt8] = []
        TransferEncoding.quotedPrintable(MIMEFixture.latin1(input)[...], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    @Test func quotedPrintableSoftBreaksKeepLinesAt76() {
        let input = MIMEFixture.latin1(String(repeating: "abc\u{E9} ", count: 60) + "\n" + String(repeating: "x", count: 76) + "\n" + String(repeating: "y", count: 77))
        var out: [UInt8] = []
        TransferEncoding.quotedPrintable(input[...], into: &out)
        let lines = MIMEFixture.lines(out)
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines.contains { $0.elementsEqual(Array(String(repeating: "x", count: 76).utf8)) })   // fits: no break
        #expect(lines.contains { $0.last == 0x3D })
        #expect(TransferDecoding.quotedPrintable(out) == input)
    }

    @Test func noSoftBrokenLineStartsWithADash() {
        let input = Array(String(repeating: "-", count: 300).utf8)
        var out: [UInt8] = []
        TransferEncoding.quotedPrintable(input[...], into: &out)
        let lines = MIMEFixture.lines(out)
        #expect(lines.count > 1)
        #expect(lines.first?.first == 0x2D)                          // the original line start stays
        #expect(lines.dropFirst().allSatisfy { $0.starts(with: Array("=2D".utf8)) })
        #expect(TransferDecoding.quotedPrintable(out) == input)
    }

    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")])
    func base64(_ input: String, _ expected: String) {
        var out: [UInt8] = []
        TransferEncoding.base64(Array(input.utf8)[...], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    @Test func base64LinesAre76AndDecodeBack() {
        var rng = SplitMix64(seed: 7)
        let input = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var out: [UInt8] = []
        TransferEncoding.base64(input[...], into: &out)
        let lines = MIMEFixture.lines(out)
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(out.last != 0x0A)
        #expect(TransferDecoding.base64(out) == input)
    }

    /// Any octets, CR and LF in any order included, come back from either encoding.
    @Test(arguments: [TransferEncoding.quotedPrintable, .base64])
    func roundTripsRandomOctets(_ encoding: TransferEncoding) {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let length = Int.random(in: 0...400, using: &rng)
            let alphabet: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3D, 0x2D, 0x2E, 0x41, 0x00, 0xE9, 0xFF, 0x7F]
            let input = (0..<length).map { _ in
                Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            var out: [UInt8] = []
            encoding.encode(input[...], into: &out)
            #expect(MIMEFixture.isSevenBit(out))
            #expect(MIMEFixture.lines(out).allSatisfy { $0.count <= 76 })
            let back = encoding == .base64 ? TransferDecoding.base64(out) : TransferDecoding.quotedPrintable(out)
            #expect(back == input)
        }
    }

    /// Every path of the word-at-a-time scan: a high bit at each offset of buffers of each size.
    @Test func eightBitScanFindsEveryOffset() {
        for size in 0..<80 {
            let clean = [UInt8](repeating: 0x7F, count: size)
            #expect(!EightBitScan.contains(clean))
            for offset in 0..<size {
                var bytes = clean
                bytes[offset] = 0x80
                #expect(EightBitScan.contains(bytes), "size \(size), offset \(offset)")
            }
        }
    }
}
