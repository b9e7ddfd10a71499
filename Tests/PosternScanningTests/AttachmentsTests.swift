import CZlib
import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// The attachments plug-in end to end on messages built here, and its parsers on their own:
/// MIME walking, RFC 2231/2047 names, transfer decodings, zip reading, bombs and broken input.
@Suite struct AttachmentsTests {
    // MARK: MIME structure

    @Test func nestedMultipartWithBannedExeDeepInside() throws {
        let message = Fixture.crlf("""
            From: a@example.org
            Content-Type: multipart/mixed; boundary="m1"

            --m1
            Content-Type: multipart/alternative; boundary="a2"

            --a2
            Content-Type: text/plain

            hello
            --a2
            Content-Type: multipart/related; boundary="r3"

            --r3
            Content-Type: text/html

            <p>hello</p>
            --r3
            Content-Type: multipart/mixed; boundary="x4"

            --x4
            Content-Type: application/octet-stream
            Content-Disposition: attachment; filename="setup.exe"
            Content-Transfer-Encoding: base64

            TVqQAAMAAAAEAAAA
            --x4--
            --r3--
            --a2--
            --m1
            Content-Type: image/png; name="logo.png"

            x
            --m1--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.contentType) == ["text/plain", "text/html", "application/octet-stream", "image/png"])
        #expect(parts.map(\.depth) == [2, 3, 4, 1])
        #expect(parts[2].fileName == "setup.exe")
        #expect(parts[2].decodedBody() == [0x4D, 0x5A, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00])
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["setup.exe"])
        #expect(finding.detail.hasPrefix("4 parts, 0 archives, 0 members"))
    }

    @Test func rfc2231ContinuedAndEncodedNameIsBanned() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: application/octet-stream
            Content-Disposition: attachment;
             filename*0*=utf-8''%E2%82%AC;
             filename*1*=.exe

            x
            --b--
            """)
        #expect(MIMEParser().parts(of: message).first?.fileName == "€.exe")
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["€.exe"])
    }

    @Test func rfc2047NameIsBanned() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: application/octet-stream; name="=?UTF-8?B?UmVjaG51bmcuZXhl?="

            x
            --b--
            """)
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["Rechnung.exe"])
    }

    /// Clients differ on which of repeated fields they read, so the names in every one count.
    @Test(arguments: [
        "Content-Disposition: attachment; filename=\"invoice.pdf\"\nContent-Disposition: attachment; filename=evil.exe",
        "Content-Disposition: attachment; filename=invoice.pdf\nContent-Disposition: attachment;\n filename*=utf-8''evil%2Eexe",
        "Content-Type: application/pdf; name=\"invoice.pdf\"\nContent-Type: application/octet-stream; name=\"evil.exe\"",
        "Content-Type: application/pdf; name=invoice.pdf\nContent-Type: application/pdf; name=\"=?UTF-8?B?ZXZpbC5leGU=?=\"",
    ])
    func repeatedFieldWithBannedNameIsBanned(_ fields: String) throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            \(fields)

            x
            --b--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.fileNames) == [["invoice.pdf", "evil.exe"]])
        #expect(parts.first?.contentType == (fields.hasPrefix("Content-Type") ? "application/pdf" : "text/plain"))
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["evil.exe"])
    }

    /// The first Content-Type gives the structure; a later one naming another boundary is noted
    /// on the parts within, once per message. The same boundary again is no conflict.
    @Test func repeatedContentTypeWithAnotherBoundaryIsNoted() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=a
            Content-Type: multipart/mixed; boundary=a

            --a
            Content-Type: text/plain
            Content-Type: multipart/mixed; boundary=hidden

            --hidden
            Content-Disposition: attachment; filename=evil.exe

            MZ
            --hidden--
            --a
            Content-Type: multipart/mixed; boundary=c
            Content-Type: multipart/related; boundary=d

            --c
            Content-Type: text/plain

            one
            --c
            Content-Type: text/plain

            two
            --c--
            --a
            Content-Type: text/plain

            three
            --a--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.hasIgnoredBoundary) == [true, true, true, false])
        #expect(parts.map(\.contentType) == ["text/plain", "text/plain", "text/plain", "text/plain"])
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "clean")
        #expect(finding.detail == "4 parts, 0 archives, 0 members; a repeated Content-Type names another boundary, walked by the first")
    }

    /// A line without a colon ends the header, as in Python's email package: what follows is body.
    @Test func lineWithoutColonEndsTheHeader() {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain
            no colon here
            Content-Disposition: attachment; filename=late.exe

            x
            --b--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.fileNames) == [[]])
        #expect(String(decoding: parts[0].encodedBody, as: UTF8.self).hasPrefix("no colon here\r\nContent-Disposition"))
    }

    @Test func quotedPrintableAndBase64Bodies() {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: Quoted-Printable

            caf=C3=A9 =3D soft=
             break\t\u{20}
            end
            --b
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64

            aGVsbG8g
            d29y bGQ=
            --b--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.count == 2)
        #expect(parts[0].transferEncoding == .quotedPrintable)
        #expect(String(decoding: parts[0].decodedBody(), as: UTF8.self) == "café = soft break\r\nend")
        #expect(parts[1].transferEncoding == .base64)
        #expect(String(decoding: parts[1].decodedBody(), as: UTF8.self) == "hello world")
        #expect(parts[1].decodedBody(limit: 4) == Array("hell".utf8))
    }

    @Test func cleanMessage() throws {
        let message = Fixture.mail(attachments: [("report.pdf", "application/pdf", Array("%PDF-1.4".utf8))])
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "clean")
        #expect(finding.names.isEmpty)
        #expect(finding.detail == "2 parts, 0 archives, 0 members")
        #expect(!finding.isBlocking)
    }

    @Test func bannedContentType() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain

            hi
            --b
            Content-Type: Application/X-MSDownload

            MZ
            --b--
            """)
        let finding = try Fixture.scan(message, AttachmentsSettings(bannedNames: [], bannedContentTypes: ["application/x-ms*"]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["application/x-msdownload"])
    }

    @Test func missingClosingBoundary() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary="outer"

            --outer
            Content-Type: multipart/alternative; boundary="inner"

            --inner
            Content-Type: text/plain

            text
            --outer
            Content-Disposition: attachment; filename=tool.scr

            data
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.fileName) == [nil, "tool.scr"])
        #expect(String(decoding: parts[1].encodedBody, as: UTF8.self) == "data")
        #expect(try Fixture.scan(message).names == ["tool.scr"])
    }

    @Test func bareLineFeedsPreambleEpilogueAndTrailingWhitespace() {
        let message = Array("""
            Content-Type: multipart/mixed; boundary="b b"

            preamble
            --b bx
            --b b \t
            Content-Type: text/plain

            one
            --b bb
            --b b
            Content-Type: text/plain; name=two.txt

            two
            --b b--\u{20}
            epilogue
            --b b
            Content-Type: text/plain; name=hidden.exe

            """.utf8)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.fileName) == [nil, "two.txt"])
        #expect(String(decoding: parts[0].encodedBody, as: UTF8.self) == "one\n--b bb")
        #expect(String(decoding: parts[1].encodedBody, as: UTF8.self) == "two")
    }

    @Test func messageRFC822IsWalkedInto() throws {
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: message/rfc822

            Subject: inner
            Content-Type: multipart/mixed; boundary=c

            --c
            Content-Type: text/plain; name="payload.js"

            alert(1)
            --c--
            --b--
            """)
        let parts = MIMEParser().parts(of: message)
        #expect(parts.map(\.fileName) == ["payload.js"])
        #expect(parts.map(\.depth) == [3])
        #expect(try Fixture.scan(message).names == ["payload.js"])
    }

    @Test func encodedMessageRFC822IsDecodedAndWalked() throws {
        let inner = Fixture.mail(attachments: [("run.exe", "application/octet-stream", [0x4D, 0x5A])])
        let message = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: message/rfc822; name="fwd.eml"
            Content-Transfer-Encoding: base64

            \(Fixture.base64(inner))
            --b--
            """)
        let finding = try Fixture.scan(message)
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["run.exe"])
        #expect(finding.detail.hasPrefix("3 parts"))
    }

    @Test(arguments: [25, 20_000])
    func mimeNestingBeyondLimitIsABomb(levels: Int) throws {
        var text = ""
        for level in 0..<levels { text += "Content-Type: multipart/mixed; boundary=\"n\(level)\"\n\n--n\(level)\n" }
        text += "Content-Type: text/plain\n\nbottom\n"
        let finding = try Fixture.scan(Fixture.crlf(text))
        #expect(finding.verdict == "archive-bomb")
        #expect(finding.names == ["part 1 (MIME nesting over 20)"])
    }

    // MARK: Parameters, encoded words, transfer decodings

    struct ParameterCase: Sendable, CustomTestStringConvertible {
        let field: String
        let value: String
        let attribute: String
        let expected: [String]
        var testDescription: String { field }
    }

    static let parameterCases: [ParameterCase] = [
        .init(field: "attachment; filename*0*=utf-8''%E2%82%AC; filename*1*=.exe", value: "attachment",
              attribute: "filename", expected: ["€.exe"]),
        .init(field: "attachment; filename*=UTF-8''na%C3%AFve.exe", value: "attachment", attribute: "filename", expected: ["naïve.exe"]),
        .init(field: "attachment; FileName*=iso-8859-1'de'%E4.exe", value: "attachment", attribute: "filename", expected: ["ä.exe"]),
        .init(field: "inline; filename*1=\"b.exe\"; filename*0=\"a\"", value: "inline", attribute: "filename", expected: ["ab.exe"]),
        .init(field: "attachment; filename*0*=us-ascii'en'a%20b; filename*1=c.txt", value: "attachment",
              attribute: "filename", expected: ["a bc.txt"]),
        .init(field: "attachment; filename=\"safe.txt\"; filename*=utf-8''evil.exe", value: "attachment",
              attribute: "filename", expected: ["evil.exe", "safe.txt"]),
        .init(field: "attachment; filename=\"a \\\"b\\\";c.txt\" junk; size=3", value: "attachment",
              attribute: "filename", expected: ["a \"b\";c.txt"]),
        .init(field: " Multipart/Mixed (a comment; here) ; Boundary=\"=_abc;def\"", value: "multipart/mixed",
              attribute: "boundary", expected: ["=_abc;def"]),
        .init(field: "application/octet-stream; name = plain name.txt ; x", value: "application/octet-stream",
              attribute: "name", expected: ["plain name.txt"]),
        .init(field: "text/plain; name", value: "text/plain", attribute: "name", expected: []),
    ]

    @Test(arguments: parameterCases)
    func parsesParameters(_ c: ParameterCase) {
        let parsed = MIMEHeaderValue.parse(Array(c.field.utf8))
        #expect(parsed.value == c.value)
        #expect(parsed.values(of: c.attribute) == c.expected)
    }

    @Test(arguments: [
        ("=?UTF-8?B?UmVjaG51bmcuZXhl?=", "Rechnung.exe"),
        ("=?iso-8859-1?q?caf=E9_au_lait?=", "café au lait"),
        ("=?utf-8?q?a?= \t =?utf-8?q?b?=", "ab"),
        ("x =?utf-8?q?a?= y", "x a y"),
        ("=?utf-8?b?4oI=?= =?utf-8?b?rA==?=.exe", "€.exe"),
        ("=?utf-8*en?Q?x?=", "x"),
        ("=?windows-1251?B?zeA=?=", "Íà"),
        ("plain name.txt", "plain name.txt"),
        ("=?broken =?utf-8?x?y?= =?", "=?broken =?utf-8?x?y?= =?"),
    ])
    func decodesEncodedWords(_ input: String, _ expected: String) {
        #expect(EncodedWord.decode(input) == expected)
    }

    @Test(arguments: [
        ("SGVs\r\nbG8=", "Hello"),
        ("SG Vs*bG8", "Hello"),
        ("SGk=SGk=", "HiHi"),
        ("", ""),
    ])
    func decodesBase64(_ input: String, _ expected: String) {
        #expect(TransferDecoding.base64(Array(input.utf8)) == Array(expected.utf8))
    }

    @Test(arguments: [
        ("a=3Db=\r\nc  \r\nd", "a=bc\r\nd"),
        ("=E2=82=AC=zz=4", "€=zz=4"),
        ("line\nnext=\n", "line\nnext"),
    ])
    func decodesQuotedPrintable(_ input: String, _ expected: String) {
        #expect(TransferDecoding.quotedPrintable(Array(input.utf8)) == Array(expected.utf8))
    }

    @Test(arguments: [
        ("invoice*.pdf.*", "Invoice-42.PDF.exe", true),
        ("*.exe", "dir/sub\\EVIL.EXE", true),
        ("*.exe", "evil.exe. . ", true),
        ("*.exe", "evil.exe.txt", false),
        ("file?.[a-c]x[!0-9]", "file1.bxz", true),
        ("file?.[a-c]x[!0-9]", "file1.dx1", false),
        ("*.js", "€.JS", true),
    ])
    func matchesBannedNames(_ pattern: String, _ name: String, _ banned: Bool) throws {
        let message = Fixture.mail(attachments: [(name, "application/octet-stream", [1, 2, 3])])
        let finding = try Fixture.scan(message, AttachmentsSettings(bannedNames: [pattern], bannedContentTypes: []))
        #expect(finding.verdict == (banned ? "banned" : "clean"))
    }

    // MARK: Archives

    @Test func zipWithBannedMember() throws {
        let zip = TestZip.build([.deflated("readme.txt", Array("read me".utf8)), .stored("evil.exe", [0x4D, 0x5A])])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("docs.zip", "application/zip", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["docs.zip/evil.exe"])
        #expect(finding.detail.hasPrefix("2 parts, 1 archive, 2 members"))
    }

    @Test func nestedZipBannedAtDepthThree() throws {
        let zip = Fixture.zipChain(["inner.zip", "deep.zip"], leaf: .deflated("evil.exe", Array(repeating: 0x90, count: 1000)))
        let finding = try Fixture.scan(Fixture.mail(attachments: [("docs.zip", "application/zip", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["docs.zip/inner.zip/deep.zip/evil.exe"])
        #expect(finding.detail.hasPrefix("2 parts, 3 archives, 3 members"))
    }

    @Test func archiveDepthBeyondLimitIsABomb() throws {
        let zip = Fixture.zipChain(["b.zip", "c.zip", "d.zip"], leaf: .stored("readme.txt", [0x41]))
        let finding = try Fixture.scan(Fixture.mail(attachments: [("a.zip", "application/zip", zip)]))
        #expect(finding.verdict == "archive-bomb")
        #expect(finding.names == ["a.zip/b.zip/c.zip/d.zip (archive nesting over 3)"])
        let deeper = try Fixture.scan(Fixture.mail(attachments: [("a.zip", "application/zip", zip)]), AttachmentsSettings(maxArchiveDepth: 4))
        #expect(deeper.verdict == "clean")
    }

    /// 50 MB of zeros deflates to about 50 KB: a 1000:1 member. With honest sizes it is refused
    /// before inflating; with lying sizes inflate stops at 100 × 50 KB, never near 50 MB.
    @Test(arguments: [false, true])
    func deflateBombIsCaughtByRatio(lyingSizes: Bool) throws {
        let size = 50_000_000
        let compressed = Fixture.deflatedZeros(count: size)
        #expect(compressed.count < 60_000)
        let member = TestZip.Member(name: "zeros.bin", method: 8, data: compressed, size: lyingSizes ? 1000 : size)
        let message = Fixture.mail(attachments: [("bomb.zip", "application/zip", TestZip.build([member]))])
        let start = ContinuousClock.now
        let finding = try Fixture.scan(message)
        let elapsed = ContinuousClock.now - start
        print("deflate bomb (lying sizes: \(lyingSizes)): \(elapsed)")
        #expect(finding.verdict == "archive-bomb")
        #expect(finding.names == ["bomb.zip/zeros.bin (expansion ratio over 100)"])
        #expect(elapsed < .seconds(2))
    }

    @Test func overlappingMembersHitTheArchiveRatio() throws {
        // Ten entries share one ~1000:1 kernel, which passes the per-member check at ratio 2000.
        let kernel = Fixture.deflatedZeros(count: 2_000_000)
        var zip = TestZip.build([.init(name: "k0", method: 8, data: kernel, size: 2_000_000)])
        zip = TestZip.aliasing(zip, count: 10)
        let finding = try Fixture.scan(Fixture.mail(attachments: [("overlap.zip", "application/zip", zip)]),
                               AttachmentsSettings(maxExpansionRatio: 2000))
        #expect(finding.verdict == "archive-bomb")
        #expect(finding.names == ["overlap.zip (expansion ratio over 2000)"])
    }

    @Test(arguments: [(10, [11], true), (10, [10], false), (10, [6, 5], true), (1000, [1001], true), (1000, [1000], false)])
    func tooManyFilesIsABomb(limit: Int, perArchive: [Int], bomb: Bool) throws {
        let attachments = perArchive.enumerated().map { index, count in
            ("many\(index).zip", "application/zip", TestZip.build((0..<count).map { .stored("f\($0).txt", []) }))
        }
        let finding = try Fixture.scan(Fixture.mail(attachments: attachments), AttachmentsSettings(maxArchiveFiles: limit))
        #expect(finding.verdict == (bomb ? "archive-bomb" : "clean"))
        if bomb { #expect(finding.names.first?.hasSuffix("(over \(limit) archive members)") == true) }
    }

    @Test func expandedSizeLimitIsABomb() throws {
        let zip = TestZip.build([.deflated("a.txt", Array(repeating: 0x41, count: 300_000)),
                                 .deflated("b.txt", Array(repeating: 0x42, count: 300_000))])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("big.zip", "application/zip", zip)]),
                               AttachmentsSettings(maxExpandedSize: 500_000))
        #expect(finding.verdict == "archive-bomb")
        #expect(finding.names == ["big.zip/b.txt (expanded size over 500000 bytes)"])
    }

    @Test func encryptedMembersAreCheckedByNameOnly() throws {
        let inner = TestZip.build([.stored("evil.exe", [0x4D, 0x5A])])
        let zip = TestZip.build([
            .init(name: "secret.zip", method: 0, data: inner, size: inner.count, flags: 1),
            .init(name: "payload.exe", method: 8, data: [1, 2, 3], size: 3, flags: 1),
        ])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("locked.zip", "application/zip", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["locked.zip/payload.exe"])
        #expect(finding.detail.contains("locked.zip/secret.zip: encrypted, not looked into"))
    }

    @Test func zipIsFoundByContentAndByOtherNames() throws {
        var entry = TestZip.Member.stored("notes.txt", [0x41])
        entry.unicodePath = "notes.exe"
        let zip = TestZip.build([entry])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("scan.pdf", "application/pdf", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["scan.pdf/notes.exe"])
    }

    @Test func zipReaderListsEntries() throws {
        let zip = TestZip.build([.stored("a/", []), .deflated("a/b.txt", Array(repeating: 0x61, count: 5000))],
                                comment: Array(("PK\u{5}\u{6}" + String(repeating: "x", count: 40)).utf8))
        let reader = try ZipReader(zip)
        #expect(reader.entryCount == 2)
        #expect(!reader.isZip64)
        let entries = try reader.entries()
        #expect(entries.map(\.name) == ["a/", "a/b.txt"])
        #expect(entries.map(\.isDirectory) == [true, false])
        #expect(entries.map(\.method) == [0, 8])
        #expect(entries[1].uncompressedSize == 5000 && entries[1].compressedSize < 100)
        #expect(try reader.extract(entries[1], cap: 5000).bytes == Array(repeating: 0x61, count: 5000))
        #expect(throws: ZipError(.outputLimit, "over 4999 bytes")) { try reader.extract(entries[1], cap: 4999) }
        let prefix = try reader.extract(entries[1], cap: 10_000, keep: 4)
        #expect(prefix.bytes.count == 4 && prefix.size == 5000)
    }

    @Test func zip64ArchiveIsRead() throws {
        let zip = TestZip.build([.deflated("readme.txt", [0x41]), .stored("run.exe", [0x4D, 0x5A])], zip64: true)
        let reader = try ZipReader(zip)
        #expect(reader.isZip64)
        #expect(try reader.entries().map(\.uncompressedSize) == [1, 2])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("big.zip", "application/zip", zip)]))
        #expect(finding.names == ["big.zip/run.exe"])
    }

    /// Self-extractors and junk in front: every recorded offset is off by the prepended length,
    /// which the reader finds and adds back, as unzip does.
    @Test(arguments: [1, 64 << 10], [false, true])
    func zipWithPrependedBytesIsRead(prefix: Int, zip64: Bool) throws {
        let zip = Array(repeating: 0x90, count: prefix)
            + TestZip.build([.deflated("readme.txt", Array("read me".utf8)), .stored("evil.exe", [0x4D, 0x5A])], zip64: zip64)
        let reader = try ZipReader(zip)
        #expect(reader.prependedLength == prefix)
        #expect(reader.isZip64 == zip64)
        let entries = try reader.entries()
        #expect(entries.map(\.name) == ["readme.txt", "evil.exe"])
        #expect(try reader.extract(entries[1], cap: 10).bytes == [0x4D, 0x5A])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("invoice.zip", "application/zip", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["invoice.zip/evil.exe"])
        #expect(finding.detail == "2 parts, 1 archive, 2 members")
    }

    @Test func prependedZipInsideAZipIsOpenedByName() throws {
        let inner = Array(repeating: 0x90, count: 10) + TestZip.build([.stored("evil.exe", [0x4D, 0x5A])])
        let zip = TestZip.build([.deflated("inner.zip", inner), .stored("fake.zip", Array("not a zip".utf8))])
        let finding = try Fixture.scan(Fixture.mail(attachments: [("docs.zip", "application/zip", zip)]))
        #expect(finding.verdict == "banned")
        #expect(finding.names == ["docs.zip/inner.zip/evil.exe"])
        #expect(finding.detail.contains("docs.zip/fake.zip: not a readable zip (too short for a zip)"))
    }

    /// Prepended data with recorded offsets that no shift makes consistent: the archive is an
    /// ordinary file or a member is unreadable, never a crash or an overflow.
    static let uncorrectableCases: [MalformedCase] = {
        let junk = [UInt8](repeating: 0x90, count: 100)
        let plain = junk + TestZip.build([.deflated("a.txt", Array(repeating: 0x61, count: 100))])
        let end = plain.count - 22
        var pastEnd = plain
        TestZip.put(0xFFFF_FFF0, 4, at: end + 16, in: &pastEnd)
        var offsetShort = plain
        TestZip.put(TestZip.read(plain, at: end + 16, 4) - 1, 4, at: end + 16, in: &offsetShort)
        var sizeShort = plain
        TestZip.put(TestZip.read(plain, at: end + 12, 4) - 1, 4, at: end + 12, in: &sizeShort)
        var hugeSize = plain
        TestZip.put(0xFFFF_FFF0, 4, at: end + 12, in: &hugeSize)
        let wide = junk + TestZip.build([.deflated("a.txt", Array(repeating: 0x61, count: 100))], zip64: true)
        let record = wide.count - 22 - 20 - 56
        var noRecord = wide
        noRecord[record] = 0
        var hugeOffsets = wide
        TestZip.put(Int.max, 8, at: record + 40, in: &hugeOffsets)
        TestZip.put(Int.max, 8, at: record + 48, in: &hugeOffsets)
        var hugeLocal = wide
        let central = TestZip.read(wide, at: record + 48, 8) + junk.count
        TestZip.put(-1, 8, at: central + 46 + 5 + 4 + 16, in: &hugeLocal)
        let unreadable = "docs.zip: not a readable zip"
        return [
            .init(label: "directory past the end record", bytes: pastEnd, note: unreadable + " (no end of central directory record)"),
            .init(label: "directory offset one short: members' offsets shifted too far", bytes: offsetShort,
                  note: "docs.zip/a.txt: local header missing"),
            .init(label: "directory size one short: no header at either offset", bytes: sizeShort,
                  note: unreadable + " (central directory header 1 missing)"),
            .init(label: "directory larger than the archive", bytes: hugeSize, note: unreadable + " (no end of central directory record)"),
            .init(label: "ZIP64 end record missing", bytes: noRecord, note: unreadable + " (no end of central directory record)"),
            .init(label: "ZIP64 offset and size near Int.max", bytes: hugeOffsets, note: unreadable + " (no end of central directory record)"),
            .init(label: "ZIP64 local header offset 2^64-1", bytes: hugeLocal, note: "docs.zip/a.txt: local header missing"),
        ]
    }()

    @Test(arguments: uncorrectableCases)
    func uncorrectableOffsetsAreAnOrdinaryFile(_ c: MalformedCase) throws {
        let finding = try Fixture.scan(Fixture.mail(attachments: [("docs.zip", "application/zip", c.bytes)]))
        #expect(finding.verdict == "clean")
        #expect(finding.detail.contains(c.note))
    }

    struct MalformedCase: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: [UInt8]
        let note: String
        var testDescription: String { label }
    }

    static let malformedCases: [MalformedCase] = {
        let good = TestZip.build([.deflated("a.txt", Array(repeating: 0x61, count: 100))])
        var outOfBounds = good
        outOfBounds[outOfBounds.count - 6] = 0xFF
        var overCounted = good
        overCounted[overCounted.count - 12] = 0xFF
        var badLocal = good
        badLocal[0] = 0
        var badData = good
        badData[30 + 5] = 0xFF
        badData[30 + 6] = 0xFF
        return [
            .init(label: "magic and junk", bytes: [0x50, 0x4B, 3, 4] + Array(repeating: 7, count: 100),
                  note: "docs.zip: not a readable zip (no end of central directory record)"),
            .init(label: "tiny", bytes: [0x50, 0x4B, 3, 4], note: "docs.zip: not a readable zip (too short for a zip)"),
            .init(label: "truncated", bytes: Array(good.dropLast(10)), note: "docs.zip: not a readable zip"),
            .init(label: "directory out of bounds", bytes: outOfBounds, note: "docs.zip: not a readable zip"),
            .init(label: "entry count too high", bytes: overCounted,
                  note: "docs.zip: not a readable zip (central directory header 2 missing)"),
            .init(label: "local header missing", bytes: badLocal, note: "docs.zip/a.txt: local header missing"),
            .init(label: "corrupt deflate data", bytes: badData, note: "docs.zip/a.txt: deflate data"),
        ]
    }()

    @Test(arguments: malformedCases)
    func malformedZipIsAnOrdinaryFile(_ c: MalformedCase) throws {
        let finding = try Fixture.scan(Fixture.mail(attachments: [("docs.zip", "application/zip", c.bytes)]))
        #expect(finding.verdict == "clean")
        #expect(finding.detail.contains(c.note))
    }

    @Test(arguments: [0, 37])
    func mutatedZipsNeverCrash(prefix: Int) throws {
        let inner = TestZip.build([.deflated("x.txt", Array("hello hello hello".utf8)), .stored("y.bin", [1, 2, 3])])
        let good = Array(repeating: 0x90, count: prefix)
            + TestZip.build([.deflated("inner.zip", inner), .deflated("z.txt", Array(repeating: 0x7A, count: 3000))], zip64: true)
        var random = SplitMix64(seed: 42)
        let plugin = AttachmentsPlugin(settings: AttachmentsSettings())
        for _ in 0..<3000 {
            var bytes = good
            for _ in 0..<Int(random.next() % 4 + 1) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 8 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count))) }
            let message = Fixture.mail(attachments: [("m.zip", "application/zip", bytes)])
            let finding = try plugin.scan(ScanRequest(queueID: "F", message: message), deadline: .now + .seconds(10))
            #expect(["clean", "banned", "archive-bomb"].contains(finding.verdict))
        }
    }

    // MARK: Plug-in behaviour

    @Test func deadlinePassedThrows() {
        let message = Fixture.mail(attachments: [("a.txt", "text/plain", [0x41])])
        #expect(throws: PluginError("attachments: deadline passed")) {
            try AttachmentsPlugin(settings: AttachmentsSettings()).scan(ScanRequest(queueID: "D", message: message),
                                                                       deadline: .now - .seconds(1))
        }
    }

    @Test func oversizedMessageIsSkipped() throws {
        let finding = try Fixture.scan(Array(repeating: 0x41, count: 2000), AttachmentsSettings(maxSize: 1000))
        #expect(finding.verdict == "skipped")
    }

    @Test func plainTenKilobyteMessageIsFast() throws {
        var text = "From: a@example.org\nTo: b@example.org\nSubject: hello\nContent-Type: text/plain\n\n"
        while text.utf8.count < 10_000 { text += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\n" }
        let message = Fixture.crlf(text)
        let plugin = AttachmentsPlugin(settings: AttachmentsSettings())
        let request = ScanRequest(queueID: "P", message: message)
        let rounds = 1000
        let start = ContinuousClock.now
        for _ in 0..<rounds { _ = try plugin.scan(request, deadline: .now + .seconds(10)) }
        let each = (ContinuousClock.now - start) / rounds
        print("plain 10 KB message: \(each) per scan (debug build)")
        #expect(try plugin.scan(request, deadline: .now + .seconds(10)).detail == "1 part, 0 archives, 0 members")
        #expect(each < .milliseconds(1))
    }
}

// MARK: - Helpers

extension AttachmentsTests {
    /// Message, zip and deflate builders; nested so that their names cannot clash with other test files.
    enum Fixture {
        static func crlf(_ text: String) -> [UInt8] {
            var out: [UInt8] = []
            for byte in text.utf8 {
                if byte == 0x0A { out.append(0x0D) }
                out.append(byte)
            }
            return out
        }

        static func scan(_ message: [UInt8], _ settings: AttachmentsSettings = AttachmentsSettings()) throws -> Finding {
            try AttachmentsPlugin(settings: settings).scan(ScanRequest(queueID: "T", message: message), deadline: .now + .seconds(30))
        }

        static func base64(_ bytes: [UInt8]) -> String {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
            var out: [UInt8] = []
            var i = 0
            while i < bytes.count {
                let n = min(3, bytes.count - i)
                var chunk = UInt32(bytes[i]) << 16
                if n > 1 { chunk |= UInt32(bytes[i + 1]) << 8 }
                if n > 2 { chunk |= UInt32(bytes[i + 2]) }
                for k in 0..<4 { out.append(k <= n ? alphabet[Int(chunk >> UInt32(18 - 6 * k) & 63)] : 0x3D) }
                i += 3
                if i % 57 == 0, i < bytes.count { out.append(0x0A) }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// A multipart/mixed message: a text part, then each attachment in base64.
        static func mail(attachments: [(name: String, type: String, data: [UInt8])]) -> [UInt8] {
            var text = "From: a@example.org\nTo: b@example.org\nSubject: test\nMIME-Version: 1.0\n"
            text += "Content-Type: multipart/mixed; boundary=\"=_XYZ\"\n\nThis is a MIME message.\n--=_XYZ\n"
            text += "Content-Type: text/plain; charset=utf-8\n\nHello\n"
            for a in attachments {
                text += "--=_XYZ\nContent-Type: \(a.type); name=\"\(a.name)\"\n"
                text += "Content-Disposition: attachment; filename=\"\(a.name)\"\nContent-Transfer-Encoding: base64\n\n"
                text += base64(a.data) + "\n"
            }
            return crlf(text + "--=_XYZ--\n")
        }

        /// `names[0]` holding `names[1]` … holding `leaf`, alternately deflated and stored.
        static func zipChain(_ names: [String], leaf: TestZip.Member) -> [UInt8] {
            var zip = TestZip.build([leaf])
            for (index, name) in names.reversed().enumerated() {
                zip = TestZip.build([index % 2 == 0 ? .deflated(name, zip) : .stored(name, zip)])
            }
            return zip
        }

        static func rawDeflate(_ chunks: (_ feed: (UnsafeBufferPointer<UInt8>, Bool) -> Void) -> Void) -> [UInt8] {
            var stream = z_stream()
            precondition(deflateInit2_(&stream, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                       ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
            defer { deflateEnd(&stream) }
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            chunks { input, last in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = UInt32(input.count)
                repeat {
                    let produced = buffer.withUnsafeMutableBufferPointer { out -> Int in
                        stream.next_out = out.baseAddress
                        stream.avail_out = UInt32(out.count)
                        _ = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH)
                        return out.count - Int(stream.avail_out)
                    }
                    out += buffer[0..<produced]
                } while stream.avail_out == 0 || (last && stream.avail_in > 0)
            }
            return out
        }

        static func rawDeflate(_ bytes: [UInt8]) -> [UInt8] {
            rawDeflate { feed in bytes.withUnsafeBufferPointer { feed($0, true) } }
        }

        /// Deflates `count` zeros from one 64 KiB buffer: the test never holds the whole input either.
        static func deflatedZeros(count: Int) -> [UInt8] {
            let zeros = [UInt8](repeating: 0, count: 1 << 16)
            return rawDeflate { feed in
                var left = count
                zeros.withUnsafeBufferPointer { all in
                    repeat {
                        let n = min(left, all.count)
                        left -= n
                        feed(UnsafeBufferPointer(rebasing: all[0..<n]), left == 0)
                    } while left > 0
                }
            }
        }
    }

    /// A minimal zip writer (APPNOTE 6.3.10 §4.3): local headers and data, central directory,
    /// ZIP64 records when asked, end record. CRCs are left 0: the reader does not check them.
    enum TestZip {
        struct Member {
            var name: String
            var method: Int
            var data: [UInt8]
            var size: Int
            var flags = 0
            var unicodePath: String?

            static func stored(_ name: String, _ data: [UInt8]) -> Member {
                Member(name: name, method: 0, data: data, size: data.count)
            }

            static func deflated(_ name: String, _ data: [UInt8]) -> Member {
                Member(name: name, method: 8, data: Fixture.rawDeflate(data), size: data.count)
            }
        }

        static func build(_ members: [Member], zip64: Bool = false, comment: [UInt8] = []) -> [UInt8] {
            var out: [UInt8] = []
            var directory: [UInt8] = []
            for m in members {
                let offset = out.count
                let name = Array(m.name.utf8)
                out += le(0x0403_4B50, 4) + le(20, 2) + le(m.flags, 2) + le(m.method, 2) + le(0, 4) + le(0, 4)
                out += le(m.data.count, 4) + le(m.size, 4) + le(name.count, 2) + le(0, 2) + name + m.data
                var extra: [UInt8] = []
                if zip64 { extra += le(1, 2) + le(24, 2) + le(m.size, 8) + le(m.data.count, 8) + le(offset, 8) }
                if let path = m.unicodePath.map({ Array($0.utf8) }) { extra += le(0x7075, 2) + le(path.count + 5, 2) + [1] + le(0, 4) + path }
                let big = zip64 ? 0xFFFF_FFFF : nil
                directory += le(0x0201_4B50, 4) + le(20, 2) + le(20, 2) + le(m.flags, 2) + le(m.method, 2) + le(0, 4) + le(0, 4)
                directory += le(big ?? m.data.count, 4) + le(big ?? m.size, 4) + le(name.count, 2) + le(extra.count, 2)
                directory += le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(big ?? offset, 4) + name + extra
            }
            let directoryOffset = out.count
            out += directory
            if zip64 {
                let record = out.count
                out += le(0x0606_4B50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4)
                out += le(members.count, 8) + le(members.count, 8) + le(directory.count, 8) + le(directoryOffset, 8)
                out += le(0x0706_4B50, 4) + le(0, 4) + le(record, 8) + le(1, 4)
            }
            let count = zip64 ? 0xFFFF : members.count
            out += le(0x0605_4B50, 4) + le(0, 2) + le(0, 2) + le(count, 2) + le(count, 2)
            out += le(zip64 ? 0xFFFF_FFFF : directory.count, 4) + le(zip64 ? 0xFFFF_FFFF : directoryOffset, 4)
            return out + le(comment.count, 2) + comment
        }

        /// Repeats the single central directory entry of `zip` `count` times, all pointing at the
        /// same local header: the overlapping-files construction of modern zip bombs.
        static func aliasing(_ zip: [UInt8], count: Int) -> [UInt8] {
            let end = zip.count - 22
            let directoryOffset = Int(zip[end + 16]) | Int(zip[end + 17]) << 8 | Int(zip[end + 18]) << 16
            let entry = Array(zip[directoryOffset..<end])
            var out = Array(zip[..<directoryOffset])
            for _ in 0..<count { out += entry }
            out += le(0x0605_4B50, 4) + le(0, 2) + le(0, 2) + le(count, 2) + le(count, 2)
            return out + le(entry.count * count, 4) + le(directoryOffset, 4) + le(0, 2)
        }

        static func le(_ value: Int, _ width: Int) -> [UInt8] {
            (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }

        static func put(_ value: Int, _ width: Int, at offset: Int, in bytes: inout [UInt8]) {
            bytes.replaceSubrange(offset..<(offset + width), with: le(value, width))
        }

        static func read(_ bytes: [UInt8], at offset: Int, _ width: Int) -> Int {
            (0..<width).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
        }
    }

}
