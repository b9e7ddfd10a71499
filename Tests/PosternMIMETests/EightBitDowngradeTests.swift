@testable import PosternMIME
import PosternTestSupport
import PosternUtil
import Testing

/// The 8-bit to 7-bit conversion for a next hop without 8BITMIME (RFC 6152 §3): which parts
/// are encoded and how, what stays byte for byte, and which messages are refused with 5.6.3.
@Suite struct EightBitDowngradeTests {
    struct SinglePart: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var message: [UInt8]
        var encoding: TransferEncoding
    }

    @Test(arguments: [
        SinglePart(testDescription: "latin-1 text, 8bit", message: MIMEFixture.latin1("""
            Subject: x
            MIME-Version: 1.0
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            Caf\u{E9} cr\u{E8}me br\u{FB}l\u{E9}e, s'il vous pla\u{EE}t.
            Merci.

            """), encoding: .quotedPrintable),
        SinglePart(testDescription: "UTF-8 text, mostly ASCII", message: MIMEFixture.utf8("""
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            Grüße aus Köln, and the rest of this line is plain ASCII text.

            """), encoding: .quotedPrintable),
        SinglePart(testDescription: "UTF-8 text, mostly Cyrillic", message: MIMEFixture.utf8("""
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            Привет, как дела? Всё хорошо.

            """), encoding: .base64),
        SinglePart(testDescription: "binary-ish octet-stream", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: 8bit

            ab\u{FF}\u{FE}cd

            """), encoding: .base64),
        SinglePart(testDescription: "Content-Transfer-Encoding binary", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: text/plain
            Content-Transfer-Encoding: binary

            mostly text, one \u{E9}
            """), encoding: .base64),
        SinglePart(testDescription: "text with a NUL", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: text/plain

            a\u{0}b \u{E9}
            """), encoding: .base64),
        SinglePart(testDescription: "no Content-Transfer-Encoding field", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: text/plain; charset=iso-8859-1

            na\u{EF}ve, and plain text after it

            """), encoding: .quotedPrintable),
        SinglePart(testDescription: "8bit with long lines", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            \(String(repeating: "caf\u{E9} au lait, ", count: 60))
            \(String(repeating: "x", count: 500))

            """), encoding: .quotedPrintable),
        SinglePart(testDescription: "last line without CRLF", message: MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            first line
            last line, no line end: \u{E9}
            """), encoding: .quotedPrintable),
    ])
    func singlePart(_ c: SinglePart) throws {
        let result = try #require(try EightBitDowngrade.convert(c.message))
        let out = result.message
        #expect(MIMEFixture.isSevenBit(out))
        #expect(result.conversions.map(\.encoding) == [c.encoding])
        #expect(MIMEFixture.lines(out).allSatisfy { $0.count <= 76 })
        let before = try #require(MIMEParser().parts(of: c.message).first)
        let after = try #require(MIMEParser().parts(of: out).first)
        #expect(after.transferEncoding == (c.encoding == .base64 ? .base64 : .quotedPrintable))
        #expect(after.decodedBody() == Array(before.encodedBody))
        // The header: one Content-Transfer-Encoding field changed or added, nothing else.
        let header = Array(out[..<after.bodyRange.lowerBound])
        #expect(MIMEFixture.contains(header, Array("Content-Transfer-Encoding: \(c.encoding.token)\r\n".utf8)))
        let originalFields = MIMEFixture.lines(Array(c.message[..<before.bodyRange.lowerBound]))
            .filter { !$0.starts(with: Array("Content-Transfer-Encoding".utf8)) }
        for field in originalFields { #expect(MIMEFixture.contains(header, Array(field))) }
    }

    /// Encoded body lines of a quoted-printable part stay within 76 characters.
    @Test func longLinesGetSoftBreaks() throws {
        let message = MIMEFixture.latin1("Content-Transfer-Encoding: 8bit\nMIME-Version: 1.0\n\n" + String(repeating: "\u{E9}t\u{E9} ", count: 200) + "\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        let body = MIMEFixture.lines(out).drop { !$0.isEmpty }.dropFirst()
        #expect(body.count > 5)
        #expect(body.allSatisfy { $0.count <= 76 })
    }

    @Test func crlfStaysALineBreakInText() throws {
        let message = MIMEFixture.latin1("MIME-Version: 1.0\nContent-Type: text/plain\n\none\ntw\u{F6}\nthree\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.hasSuffix("\r\n\r\none\r\ntw=F6\r\nthree\r\n"))
        #expect(!text.contains("=0D") && !text.contains("=0A"))
    }

    @Test func multipartKeepsTheSevenBitPartByteForByte() throws {
        let sevenBit = MIMEFixture.latin1("""
            Content-Type: text/plain; charset=us-ascii
            Content-Transfer-Encoding: 7bit
            Content-Disposition: inline

            plain ASCII, left alone  \t
            even with trailing white space and = signs
            """)
        let message = MIMEFixture.latin1("""
            From: a@example.org
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="b1"
            Content-Transfer-Encoding: 8bit

            preamble
            --b1

            """) + sevenBit + MIMEFixture.latin1("""

            --b1
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            h\u{E9}llo, world of plain text
            --b1--
            epilogue

            """)
        let result = try #require(try EightBitDowngrade.convert(message))
        let out = result.message
        #expect(MIMEFixture.isSevenBit(out))
        #expect(MIMEFixture.contains(out, MIMEFixture.latin1("--b1\n") + sevenBit + MIMEFixture.latin1("\n--b1\n")))
        let parts = MIMEParser().parts(of: out)
        #expect(parts.count == 2)
        #expect(parts[1].transferEncoding == .quotedPrintable)
        #expect(parts[1].decodedBody() == MIMEFixture.latin1("h\u{E9}llo, world of plain text"))
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/mixed; boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n"))
        #expect(text.hasSuffix("--b1--\r\nepilogue\r\n"))
        #expect(result.summary == "1 part: 1 quoted-printable, 0 base64")
    }

    @Test func nestedMessageInsideMultipart() throws {
        let message = MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: text/plain

            cover note
            --outer
            Content-Type: message/rfc822
            Content-Transfer-Encoding: 8bit

            Subject: forwarded
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary=inner

            --inner
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            Gr\u{FC}\u{DF}e aus K\u{F6}ln und viel ASCII dazu
            --inner
            Content-Type: image/x-raw
            Content-Transfer-Encoding: binary

            \u{89}PNG\u{0}\u{FF}
            --inner--
            --outer--

            """)
        let result = try #require(try EightBitDowngrade.convert(message))
        let out = result.message
        #expect(MIMEFixture.isSevenBit(out))
        #expect(result.conversions.map(\.encoding) == [.quotedPrintable, .base64])
        let parts = MIMEParser().parts(of: out)
        #expect(parts.map(\.contentType) == ["text/plain", "text/plain", "image/x-raw"])
        #expect(parts.map(\.depth) == [1, 3, 3])
        #expect(parts[1].decodedBody() == MIMEFixture.latin1("Gr\u{FC}\u{DF}e aus K\u{F6}ln und viel ASCII dazu"))
        #expect(parts[2].decodedBody() == MIMEFixture.latin1("\u{89}PNG\u{0}\u{FF}"))
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: forwarded\r\n"))
        #expect(text.contains("--outer\r\nContent-Type: text/plain\r\n\r\ncover note\r\n--outer\r\n"))
    }

    @Test func nonMIMEMessageGetsMIMEVersion() throws {
        let message = MIMEFixture.latin1("Subject: old style\n\nd\u{E9}j\u{E0} vu, once more\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        #expect(String(decoding: out, as: UTF8.self)
            == "Subject: old style\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu, once more\r\n")
    }

    @Test func headerCutShortGetsTheFieldAndTheEmptyLine() throws {
        // No empty line: the walker starts the body at the first line that is not a field.
        let message = MIMEFixture.latin1("MIME-Version: 1.0\nCaf\u{E9} au lait\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        #expect(String(decoding: out, as: UTF8.self) == "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait\r\n")
    }

    /// Found by the eight-bit fuzz target (Fuzz/Regressions/eight-bit/): encoded, the line that
    /// ended the header joined the next one (bare LF → =0A) and held a colon, so readers took
    /// it for a header field and the part's content changed.
    @Test func encodedFirstBodyLineCannotReadAsAField() throws {
        let body = Array("first line\nnext: with a colon, caf\u{E9}\r\n".utf8)
        let message = Array("Subject: x\r\n".utf8) + body
        let out = try #require(try EightBitDowngrade.convert(message)).message
        let parts = MIMEParser().parts(of: out)
        try #require(parts.count == 1)
        #expect(parts[0].transferEncoding == .quotedPrintable)
        #expect(parts[0].decodedBody() == body)
    }

    @Test func everyTransferEncodingFieldIsRewritten() throws {
        let message = MIMEFixture.latin1("MIME-Version: 1.0\ncontent-transfer-encoding : 8bit\nX: y\nContent-Transfer-Encoding: binary\n\n\u{E9}t\u{E9} is summer, in French\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        #expect(String(decoding: out, as: UTF8.self)
            == "MIME-Version: 1.0\r\ncontent-transfer-encoding : quoted-printable\r\nX: y\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9 is summer, in French\r\n")
    }

    /// A body declared encoded that holds stray 8-bit octets is encoded again, as readers decode it.
    @Test func strayOctetsInAnEncodedBody() throws {
        let message = MIMEFixture.latin1("""
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Transfer-Encoding: quoted-printable

            caf\u{E9} =3D
            --b
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64

            Zm9v\u{E9}YmFy
            --b--

            """)
        let out = try #require(try EightBitDowngrade.convert(message)).message
        let parts = MIMEParser().parts(of: out)
        #expect(parts[0].decodedBody() == MIMEFixture.latin1("caf\u{E9} ="))
        #expect(parts[1].decodedBody() == Array("foobar".utf8))
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =3D\r\n--b"))
        #expect(text.contains("Content-Transfer-Encoding: base64\r\n\r\nZm9vYmFy\r\n--b--"))
    }

    @Test func eightBitPreambleIsScrubbed() throws {
        let message = MIMEFixture.latin1("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\nCeci est un message \u{E0} plusieurs parties.\n--b\n\nascii\n--b--\n")
        let out = try #require(try EightBitDowngrade.convert(message)).message
        #expect(String(decoding: out, as: UTF8.self).contains("\r\nCeci est un message ? plusieurs parties.\r\n--b\r\n\r\nascii\r\n--b--\r\n"))
    }

    @Test func textThatWouldReadAsADelimiterGoesBase64() throws {
        // The boundary holds "=E9": quoted-printable would write the part's line as "--x=E9".
        let message = MIMEFixture.latin1("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"x=E9\"\n\n--x=E9\nContent-Type: text/plain\n\n--x\u{E9} and more text here\n--x=E9--\n")
        let result = try #require(try EightBitDowngrade.convert(message))
        #expect(result.conversions.map(\.encoding) == [.base64])
        let parts = MIMEParser().parts(of: result.message)
        #expect(parts.count == 1)
        #expect(parts[0].decodedBody() == MIMEFixture.latin1("--x\u{E9} and more text here"))
    }

    /// 7-bit mail is not touched, not even walked.
    @Test(arguments: [
        "Subject: plain\n\nhello\n",
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: 8bit\n\n--b\nContent-Transfer-Encoding: 8bit\n\nascii only\n--b--\n",
        "",
    ])
    func sevenBitMessageIsLeftAlone(_ text: String) throws {
        #expect(try EightBitDowngrade.convert(MIMEFixture.latin1(text)) == nil)
    }

    struct Refused: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var message: String
        var reason: EightBitRefusal.Reason
        var hint: String
    }

    @Test(arguments: [
        Refused(testDescription: "8-bit Subject", message: "Subject: caf\u{E9}\n\nx\n",
                reason: .headerField, hint: "8-bit octets in header field Subject"),
        Refused(testDescription: "8-bit in a folded field", message: "To: a@example.org,\n \u{E9}@example.org\n\nx\n",
                reason: .headerField, hint: "8-bit octets in header field To"),
        Refused(testDescription: "8-bit in a part header",
                message: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment; filename=\"\u{E9}.txt\"\n\nx\n--b--\n",
                reason: .headerField, hint: "8-bit octets in header field Content-Disposition"),
        Refused(testDescription: "8-bit in an attached message's header",
                message: "MIME-Version: 1.0\nContent-Type: message/rfc822\n\nSubject: \u{E9}\n\nx\n",
                reason: .headerField, hint: "8-bit octets in header field Subject"),
        Refused(testDescription: "multipart/signed",
                message: "MIME-Version: 1.0\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=s\n\n--s\nContent-Transfer-Encoding: 8bit\n\nsign\u{E9}\n--s\nContent-Type: application/pgp-signature\n\nsig\n--s--\n",
                reason: .sealed, hint: "8-bit octets inside multipart/signed"),
        Refused(testDescription: "multipart/encrypted deep inside mixed",
                message: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: multipart/encrypted; boundary=e\n\n--e\n\nx\n--e\n\n\u{E9}\n--e--\n--m--\n",
                reason: .sealed, hint: "8-bit octets inside multipart/encrypted"),
        Refused(testDescription: "unknown transfer encoding",
                message: "MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 \u{E9}\n",
                reason: .unknownEncoding, hint: "8-bit octets in a text/plain part in Content-Transfer-Encoding x-uuencode"),
        Refused(testDescription: "multipart without a boundary",
                message: "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n\u{E9}\n",
                reason: .composite, hint: "8-bit octets in a multipart/mixed without a boundary"),
        Refused(testDescription: "multipart without a delimiter",
                message: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--c\n\n\u{E9}\n",
                reason: .composite, hint: "8-bit octets in a multipart/mixed without a delimiter line of its own"),
        Refused(testDescription: "message/partial",
                message: "MIME-Version: 1.0\nContent-Type: message/partial; id=x; number=1\n\n\u{E9}\n",
                reason: .composite, hint: "8-bit octets in a message/partial part, which cannot be encoded"),
        Refused(testDescription: "base64 multipart",
                message: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n--b\n\n\u{E9}\n--b--\n",
                reason: .composite, hint: "multipart/mixed with Content-Transfer-Encoding base64 holds 8-bit octets"),
    ])
    func refused(_ c: Refused) {
        #expect(throws: EightBitRefusal(c.reason, c.hint)) { try EightBitDowngrade.convert(MIMEFixture.latin1(c.message)) }
    }

    @Test func tooDeepIsRefused() {
        var text = "MIME-Version: 1.0\n"
        for level in 0...EightBitDefaults.maxDepth { text += "Content-Type: multipart/mixed; boundary=b\(level)\n\n--b\(level)\n" }
        text += "\n\u{E9}\n"
        #expect(throws: EightBitRefusal(.tooDeep, "8-bit octets in a multipart/mixed nested deeper than \(EightBitDefaults.maxDepth) levels")) {
            try EightBitDowngrade.convert(MIMEFixture.latin1(text))
        }
    }

    /// Found by the eight-bit fuzz target (Fuzz/Regressions/eight-bit/): inside a message/global
    /// a multipart reused the enclosing boundary. The scanner's walk gave its part to the
    /// message/global; encoded whole up to the first "--g", that part moved out of it.
    @Test(arguments: ["g", "h"])
    func messageGlobalReusingAnEnclosingBoundaryIsRefused(_ inner: String) throws {
        let message = MIMEFixture.utf8("""
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary=g

            --g
            Content-Type: message/global

            Subject: Grüße
            Content-Type: multipart/mixed; boundary=\(inner)

            --\(inner)
            Content-Type: text/plain

            caf\u{E9}
            --\(inner)--
            --g--

            """)
        if inner == "g" {
            #expect(throws: EightBitRefusal(.composite, "8-bit octets in a message/global whose parts reuse an enclosing boundary")) {
                try EightBitDowngrade.convert(message)
            }
        } else {
            #expect(try EightBitDowngrade.convert(message)?.conversions.map(\.contentType) == ["message/global"])
        }
    }

    @Test func messageGlobalIsEncodedWhole() throws {
        let message = MIMEFixture.utf8("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/global\n\nSubject: Grüße\n\nHallo, this is a longer body in plain ASCII\n--b--\n")
        let result = try #require(try EightBitDowngrade.convert(message))
        #expect(result.conversions == [EightBitDowngrade.Conversion(contentType: "message/global", encoding: .quotedPrintable)])
        #expect(String(decoding: result.message, as: UTF8.self).contains("Content-Type: message/global\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSubject: Gr=C3=BC=C3=9Fe\r\n"))
    }
}
