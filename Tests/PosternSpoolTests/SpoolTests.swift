import Crypto
import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternMIME
import PosternSMTP
@testable import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct SpoolTests {
    func envelope(_ id: String, size: Int) -> Envelope {
        Envelope(id: id, arrival: 1_700_000_000.5, clientIP: "192.0.2.1", clientPort: 4242, helo: "mx.example",
                 serverIP: "127.0.0.1", serverPort: 10024, xforward: ["ADDR": "198.51.100.7", "NAME": "orig.example"],
                 mailFrom: "a@example.com", mailParameters: MailParameters([.init(keyword: "BODY", value: "8BITMIME")]),
                 recipients: [Recipient(address: "b@example.org", parameters: MailParameters([.init(keyword: "NOTIFY", value: "FAILURE")])),
                              Recipient(address: "c@example.org")],
                 size: size, bodyHash: "00ff", validGuards: 0, receivedHeaders: 2)
    }

    func write(_ spool: borrowing TempSpool, message: String) throws -> String {
        try spool.write(message) { envelope($0, size: $1) }
    }

    /// Appends of every size, crossing the write chunk in pieces and at once (the writev of
    /// what was pending and the new bytes), give the message byte for byte.
    @Test func appendsAcrossTheWriteChunkKeepEveryByteInOrder() throws {
        let spool = try TempSpool()
        let id = QueueID.make()
        let w = try SpoolWriter(layout: spool.layout, id: id)
        var rng = SplitMix64(seed: 64)
        var expected: [UInt8] = []
        for size in [1, 100, SMTPDefaults.writeChunk - 50, 49, 1, 3 * SMTPDefaults.writeChunk, 0, 7, SMTPDefaults.writeChunk] {
            let piece = (0..<size).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
            expected += piece
            var b = ByteBuffer(bytes: piece)
            try w.append(&b)
            #expect(b.readableBytes == 0)
        }
        try w.finish(envelope: envelope(id, size: expected.count))
        try w.commit(to: .scan)
        let (f, message) = try SpoolFile.readWithMessage(path: spool.layout.path(id, .scan))
        #expect(f.messageLength == expected.count)
        #expect(Array(message.readableBytesView) == expected)
        try expectStoredMessage(StoredMessage(file: f), holds: expected, in: spool)
    }

    /// What the plug-ins and the quarantine take: from the file and from memory alike, the
    /// whole (in an array of its size: malloc may round it up), the head, the chunks in order
    /// with the last one marked, and the copy the kernel makes.
    @Test(arguments: [0, 1, 65_535, 65_536, 200_001])
    func aStoredMessageGivesTheSameBytesEveryWay(size: Int) throws {
        let spool = try TempSpool()
        var rng = SplitMix64(seed: UInt64(size))
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let id = QueueID.make()
        let w = try SpoolWriter(layout: spool.layout, id: id)
        var b = ByteBuffer(bytes: bytes)
        try w.append(&b)
        try w.finish(envelope: envelope(id, size: size))
        try w.commit(to: .scan)
        let file = try SpoolFile.read(path: spool.layout.path(id, .scan))
        try expectStoredMessage(StoredMessage(file: file), holds: bytes, in: spool)
        try expectStoredMessage(StoredMessage(bytes), holds: bytes, in: spool)
        // The file stays readable through the descriptor once it is gone from the spool.
        let gone = try StoredMessage(file: file)
        #expect(unlink(file.path) == 0)
        #expect(try gone.bytes() == bytes)
    }

    /// The header fields are read and parsed once for a scan's rules, plug-ins and notices.
    @Test func aStoredMessagesHeaderFieldsAreReadOnce() throws {
        let spool = try TempSpool()
        let text = "Subject: once\r\nX-Two: 2\r\n\r\nbody\r\n"
        let id = try write(spool, message: text)
        let path = spool.layout.path(id, .scan)
        let message = try StoredMessage(file: SpoolFile.read(path: path))
        let first = try message.headerFields()
        #expect(first == [HeaderField(name: "Subject", value: "once"), HeaderField(name: "X-Two", value: "2")])
        // The file changed behind it (it never does in the spool): the fields stay as first read.
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        #expect(pwrite(fd, "Subject: twice", 14, off_t(SpoolFile.headerLength)) == 14)
        close(fd)
        #expect(try message.headerFields() == first)
        #expect(try StoredMessage(file: SpoolFile.read(path: path)).headerFields().first?.value == "twice")
    }

    func expectStoredMessage(_ m: StoredMessage, holds expected: [UInt8], in spool: borrowing TempSpool) throws {
        #expect(m.count == expected.count)
        #expect(try m.head(upTo: 100) == Array(expected.prefix(100)))
        var chunks: [[UInt8]] = []
        var lasts: [Bool] = []
        try m.forEachChunk(size: 65_536, { (p, last) throws(SpoolError) in
            chunks.append(Array(p))
            lasts.append(last)
        }, readError: { $0 })
        #expect(chunks.joined().elementsEqual(expected) && chunks.dropLast().allSatisfy { $0.count == 65_536 })
        #expect(lasts == Array(repeating: false, count: chunks.count - 1) + [true])
        let out = spool.layout.root + "/copy-\(expected.count)-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        defer { close(fd) }
        try m.copy(to: fd, name: out)
        #expect(try SysCall.readFile(out) == expected)
        let whole = try m.bytes()
        #expect(whole == expected && whole.capacity < expected.count + 4096)
        #expect(try m.head(upTo: expected.count + 1) == expected)   // from the bytes read now
    }

    /// The chunked copy stops at the count asked, or at the end of the file without one; a
    /// file shorter than the count asked is an error, not a short copy taken for the whole.
    @Test func copyRangeCopiesWhatWasAskedOrFails() throws {
        let spool = try TempSpool()
        let source = spool.layout.root + "/source", out = spool.layout.root + "/out"
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try SysCall.replaceFile(source, with: bytes, mode: 0o600, sync: false)
        let fd = open(source, O_RDONLY | O_CLOEXEC), o = open(out, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(fd); close(o) }
        try SysCall.copyRange(fd, from: 70_000, count: 100_000, path: source, to: o, outName: out)
        #expect(try SysCall.readFile(out) == Array(bytes[70_000..<170_000]))
        try SysCall.copyRange(fd, from: 190_000, count: nil, path: source, to: o, outName: out)
        #expect(try SysCall.readFile(out) == Array(bytes[70_000..<170_000] + bytes[190_000...]))
        let short = #expect(throws: SpoolError.self) {
            try SysCall.copyRange(fd, from: 150_000, count: 60_000, path: source, to: o, outName: out)
        }
        #expect(short?.call == "pread" && short?.path == source && short?.errno == EIO)
    }

    /// A large message is handed to the disk while it streams in, a quarter MB at a time,
    /// so the fsync before the 250 waits for its tail only; a small one is left to the fsync,
    /// as is the first page (the header line is rewritten there at the end).
    @Test func largeMessagesAreWrittenBackAsTheyStreamIn() throws {
        let spool = try TempSpool()
        let large = try SpoolWriter(layout: spool.layout, id: QueueID.make())
        var starts: [Int] = []
        for _ in 0..<16 {
            var piece = ByteBuffer(repeating: UInt8(ascii: "x"), count: SMTPDefaults.writeChunk)
            try large.append(&piece)
            #expect(large.written - large.writtenBackTo < SpoolWriter.writebackChunk + SMTPDefaults.writeChunk)
            if starts.last != large.writtenBackTo { starts.append(large.writtenBackTo) }
        }
        #expect(starts.first == SpoolWriter.writebackStart)
        #expect(starts.count >= 4)   // 1 MB: a start every 256 KB or so, not one at the end
        #expect(large.written >= 16 * SMTPDefaults.writeChunk)
        large.abort()

        let small = try SpoolWriter(layout: spool.layout, id: QueueID.make())
        var piece = ByteBuffer(repeating: UInt8(ascii: "x"), count: 10_000)
        try small.append(&piece)
        try small.finish(envelope: envelope(small.id, size: 10_000))
        #expect(small.writtenBackTo == SpoolWriter.writebackStart)
        small.abort()
    }

    @Test func writesAndReadsBack() throws {
        let spool = try TempSpool()
        let message = "Subject: x\r\n\r\nbody \u{00e9}\r\n.\r\n"
        let id = try write(spool, message: message)
        #expect(access(spool.layout.path(id, .incoming), F_OK) != 0)   // moved, not copied
        let f = try SpoolFile.read(path: spool.layout.path(id, .scan))
        var expected = envelope(id, size: message.utf8.count)
        expected.dotLines = true   // the writer's own finding: the last line is a dot
        #expect(f.envelope == expected)
        #expect(f.verdict == nil)
        #expect(String(buffer: try f.readMessage()) == message)
    }

    @Test func verdictAndInPlaceStatusUpdates() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "a\r\n")
        var f = try SpoolFile.read(path: spool.layout.path(id, .scan))
        let v = Verdict(scanned: 1, action: "pass", routes: [.init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
                                                              .init(recipient: 1, endpoint: "lmtp:local:/run/lmtp")])
        try f.writeVerdict(v, sync: true)
        f = try SpoolFile.read(path: spool.layout.path(id, .scan))
        #expect(f.verdict == v)
        try f.update(statuses: [(route: 1, status: .delivered)], attempts: 3, sync: false)
        let g = try SpoolFile.read(path: spool.layout.path(id, .scan))
        #expect(g.verdict?.routes.map(\.status) == [.pending, .delivered])
        #expect(g.verdict?.attempts == 3)
        #expect(String(buffer: try g.readMessage()) == "a\r\n")
    }

    /// What writeVerdict returns is what reading the file back gives: on a file ending with
    /// its envelope, and on one whose earlier verdict and delivery errors it replaces.
    @Test func writtenVerdictReadsBackTheSame() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "a\r\n")
        let path = spool.layout.path(id, .scan)
        let old = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:25@192.0.2.1"),
                                               .init(recipient: 1, endpoint: "inet:25@192.0.2.2")], attempts: 2)
        let new = Verdict(scanned: 2, action: "pass", routes: [.init(recipient: 1, endpoint: "lmtp:local:/run/lmtp", address: "x@y.z")],
                          addHeaders: ["X-Scanned: yes"])
        for v in [old, new] {
            let f = try SpoolFile.read(path: path)
            if v == new {
                #expect(f.verdict == old)
                try f.writeDeliveryErrors([0: DeliveryError(time: 5, text: "451 4.4.1 later")])
                #expect(try SpoolFile.read(path: path).deliveryErrors.count == 1, "an errors section to replace")
            }
            let written = try SpoolFile.read(path: path).writeVerdict(v, sync: false)
            let back = try SpoolFile.read(path: path)
            #expect(written.verdict == v && back.verdict == v)
            #expect(written.routeStatusOffsets == back.routeStatusOffsets && written.attemptsOffset == back.attemptsOffset)
            #expect(written.verdictEnd == back.verdictEnd && written.length == back.length && back.length == back.verdictEnd)
            #expect(written.envelope == back.envelope && written.envelopeEnd == back.envelopeEnd)
            #expect(back.deliveryErrors.isEmpty && written.deliveryErrors.isEmpty && !written.verdictIncomplete)
        }
    }

    @Test func incompleteVerdictIsReplaced() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "a\r\n")
        let path = spool.layout.path(id, .scan)
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = Glibc.write(fd, "scanned 1\nverdict pa", 20)
        close(fd)
        let f = try SpoolFile.read(path: path)
        #expect(f.verdict == nil && f.verdictIncomplete)
        try f.writeVerdict(Verdict(scanned: 2, routes: [.init(recipient: 0, endpoint: "inet:25@[::1]")]), sync: false)
        #expect(try SpoolFile.read(path: path).verdict?.routes.first?.endpoint == "inet:25@[::1]")
    }

    @Test(arguments: [
        "",                                                    // empty file
        "POSTERN-SPOOL 1 envelope-at=0000000000000045\n",      // no envelope end marker
        "garbage\n",
        "POSTERN-SPOOL 1 envelope-at=0000000000009999\nab",    // offset beyond the end
    ])
    func refusesDamagedFiles(_ content: String) throws {
        let spool = try TempSpool()
        let path = spool.layout.path(QueueID.make(), .scan)
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        _ = content.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
        #expect(throws: SpoolFormatError.self) { try SpoolFile.read(path: path) }
    }

    @Test func truncatedMessageIsRefused() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "hello\r\n")
        let path = spool.layout.path(id, .scan)
        let st = try SysCall.readFile(path)
        // Cut the file inside the envelope: the end marker is gone.
        truncate(path, off_t(st.count - 20))
        #expect(throws: SpoolFormatError.self) { try SpoolFile.read(path: path) }
    }

    /// Found by the spool fuzz target (Fuzz/Regressions/spool/): offsets were counted in the
    /// UTF-8 of the repaired text, so octets that are not UTF-8 (a damaged or hand-edited
    /// envelope) moved every offset after them, and senderd's in-place update wrote its status
    /// byte elsewhere.
    @Test func inPlaceUpdateHitsItsByteAfterNonUTF8Octets() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "a\r\n")
        let path = spool.layout.path(id, .scan)
        var f = try SpoolFile.read(path: path)
        let v = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
                                             .init(recipient: 1, endpoint: "inet:10025@192.0.2.1")])
        try f.writeVerdict(v, sync: false)
        // Damage the envelope: "helo mx.example" becomes three octets that are not UTF-8.
        var bytes = try SysCall.readFile(path)
        let helo = Array("helo mx.example\n".utf8)
        let at = try #require((0...(bytes.count - helo.count)).first { bytes[$0..<($0 + helo.count)].elementsEqual(helo) })
        bytes.replaceSubrange(at..<(at + helo.count), with: Array("helo ".utf8) + [0xFF, 0xFE, 0xFD, 0x0A])
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        f = try SpoolFile.read(path: path)
        for (offset, route) in zip(f.routeStatusOffsets, try #require(f.verdict).routes) {
            #expect(bytes[offset] == route.status.rawValue)
        }
        try f.update(statuses: [(route: 1, status: .delivered)], attempts: 2, sync: false)
        let g = try SpoolFile.read(path: path)
        #expect(g.verdict?.routes.map(\.status) == [.pending, .delivered])
        #expect(g.verdict?.attempts == 2)
        #expect(g.envelope.recipients == f.envelope.recipients)
    }

    /// writeVerdict returns the file as reading it back gives it, offsets included (scannerd
    /// updates statuses in place through them), also over an incomplete verdict and errors.
    @Test func theFileWriteVerdictReturnsIsTheFileAsRead() throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "Subject: \u{00e9}\r\n\r\nbody\r\n")
        let path = spool.layout.path(id, .scan)
        let v = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
                                             .init(recipient: 1, endpoint: "inet:25@[::1]", address: "x@example.net")],
                        attempts: 3)
        var f = try SpoolFile.read(path: path)
        for _ in 0..<2 {   // the second time over a complete verdict and an errors section
            let written = try f.writeVerdict(v, sync: false)
            let read = try SpoolFile.read(path: path)
            #expect(written.envelope == read.envelope)
            #expect(written.verdict == read.verdict)
            #expect(written.verdictIncomplete == read.verdictIncomplete)
            #expect(written.routeStatusOffsets == read.routeStatusOffsets)
            #expect(written.attemptsOffset == read.attemptsOffset)
            #expect(written.verdictEnd == read.verdictEnd)
            #expect(written.envelopeEnd == read.envelopeEnd)
            #expect(written.messageLength == read.messageLength)
            #expect(written.deliveryErrors.isEmpty && read.deliveryErrors.isEmpty)
            try written.update(statuses: [(route: 1, status: .delivered)], attempts: 4, sync: false)
            #expect(try SpoolFile.read(path: path).verdict?.routes.map(\.status) == [.pending, .delivered])
            try written.writeDeliveryErrors([0: DeliveryError(time: 5, text: "451 later")])
            f = try SpoolFile.read(path: path)
            #expect(f.deliveryErrors.count == 1)
        }
    }

    /// Found by the spool fuzz target (Fuzz/Regressions/spool/): an attempts field that is not
    /// six digits was taken, and update(attempts:) then wrote six digits over the end marker
    /// (`attempts 5\nend verdict` became `attempts 000002nd verdict`): the verdict, with the
    /// statuses of recipients already delivered, was lost. Such a file is damaged: refused.
    @Test(arguments: ["5", "0000)))03", "-00001", "0000001", "+00001"])
    func attemptsOfAnotherWidthIsRefused(_ attempts: String) throws {
        try expectDamaged(replacing: "attempts 000001\n", with: "attempts \(attempts)\n")
    }

    /// A file with one route and a verdict, `line` of it replaced by `damaged`: refused.
    func expectDamaged(replacing line: String, with damaged: String) throws {
        let spool = try TempSpool()
        let id = try write(spool, message: "a\r\n")
        let path = spool.layout.path(id, .scan)
        let f = try SpoolFile.read(path: path)
        try f.writeVerdict(Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:25@[::1]")], attempts: 1), sync: false)
        var text = String(decoding: try SysCall.readFile(path), as: UTF8.self)
        #expect(text.contains(line))
        text = text.replacing(line, with: damaged)
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
        #expect(throws: SpoolFormatError.self) { try SpoolFile.read(path: path) }
    }

    /// Found by the spool fuzz target (Fuzz/Regressions/spool/route-spaces): `route   D 0 …`
    /// with more than one space was read, and its status offset pointed at a space, which
    /// update(statuses:) would have overwritten while the status stayed. Refused as damaged.
    @Test(arguments: ["route  P 0 inet:25@[::1]\n", "route P  0 inet:25@[::1]\n", "route P 0  inet:25@[::1]\n"])
    func routeLinesWithMoreSpacesAreRefused(_ line: String) throws {
        try expectDamaged(replacing: "route P 0 inet:25@[::1]\n", with: line)
    }

    @Test func exclusiveCreate() throws {
        let spool = try TempSpool()
        let id = QueueID.make()
        _ = try SpoolWriter(layout: spool.layout, id: id)
        #expect(throws: SpoolError.self) { try SpoolWriter(layout: spool.layout, id: id) }
    }

    @Test func abortLeavesNothing() throws {
        let spool = try TempSpool()
        let w = try SpoolWriter(layout: spool.layout, id: QueueID.make())
        try w.append("partial")
        w.abort()
        #expect(try SysCall.listDirectory(spool.layout.directory(.incoming)).isEmpty)
    }
}

@Suite struct QueueIDTests {
    @Test func uniqueSortableValid() {
        var ids: [String] = []
        for _ in 0..<2000 { ids.append(QueueID.make()) }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy(QueueID.isValid))
        let early = QueueID.make(now: timespec(tv_sec: 1_000_000_000, tv_nsec: 0))
        let late = QueueID.make(now: timespec(tv_sec: 2_000_000_000, tv_nsec: 0))
        #expect(early < late)
        #expect(!QueueID.isValid("../etc/passwd"))
    }
}

@Suite struct LoopGuardTests {
    @Test func guardIsBoundToBody() {
        let g = LoopGuard(key: Array("secret".utf8))
        let h = g.header(host: "mx", id: "ID1", bodyHash: "aa")
        let value = String(h.dropFirst("X-Postern-Guard:".count))
        #expect(g.isValid(value: value, bodyHash: "aa"))
        #expect(!g.isValid(value: value, bodyHash: "bb"))
        #expect(!LoopGuard(key: Array("other".utf8)).isValid(value: value, bodyHash: "aa"))
        #expect(!g.isValid(value: value.replacingOccurrences(of: "ID1", with: "ID2"), bodyHash: "aa"))
    }

    /// senderd's guards come one after another from one keyed HMAC, copied for each: every
    /// one is the HMAC of its own fields alone, the same as a new guard's, and validates.
    @Test func successiveGuardsAreEachTheirOwnHMAC() {
        let key = Array("secret".utf8)
        let g = LoopGuard(key: key)
        let first = g.header(host: "mx", id: "ID1", bodyHash: "aa")
        let second = g.header(host: "mx", id: "ID2", bodyHash: "bb")
        #expect(second == LoopGuard(key: key).header(host: "mx", id: "ID2", bodyHash: "bb"))
        #expect(g.header(host: "mx", id: "ID1", bodyHash: "aa") == first)
        let code = HMAC<SHA256>.authenticationCode(for: Array("1|mx|ID2|bb".utf8), using: SymmetricKey(data: key))
        #expect(second.hasSuffix("mac=" + code.hex))
        #expect(g.isValid(value: String(second.dropFirst("X-Postern-Guard:".count)), bodyHash: "bb"))
    }

    @Test func inspectorFindsGuardAndReceivedAndHashesBody() {
        var i = HeaderInspector()
        let msg = "Received: from a\r\n\tby b\r\nreceived: x\r\nX-Postern-Guard: v=1; h=mx\r\nSubject: s\r\n\r\nbody\r\n"
        // Feed in two pieces split inside a header line.
        let bytes = Array(msg.utf8)
        bytes[..<20].withUnsafeBytes { i.feed($0) }
        bytes[20...].withUnsafeBytes { i.feed($0) }
        #expect(i.receivedCount == 2)
        #expect(i.guardValues == [" v=1; h=mx"])
        #expect(i.bodyHash() == SHA256.hash(data: Array("body\r\n".utf8)).hex)
    }
}

extension LoopGuardTests {
    /// Every guard is kept, topmost first, up to the cap; each valid one names its pass.
    @Test func inspectorKeepsEveryGuardUpToTheCap() {
        let g = LoopGuard(key: Array("secret".utf8))
        var head = ""
        for k in 0..<(HeaderInspector.maxGuards + 3) { head += g.header(host: "mx", id: "ID\(k)", bodyHash: SHA256.hash(data: Array("b\r\n".utf8)).hex) + "\r\n" }
        var i = HeaderInspector()
        i.feed(ByteBuffer(string: head + "X-Postern-Guard: v=1; h=mx; id=forged; mac=00\r\n\r\nb\r\n"))
        let values = i.guardValues
        let hash = i.bodyHash()
        #expect(values.count == HeaderInspector.maxGuards)
        #expect(g.stamp(value: values[0], bodyHash: hash)?.id == "ID0")
        #expect(values.allSatisfy { g.isValid(value: $0, bodyHash: hash) })
    }

    /// Every path the receiver accepts reads back from the spool as it was, with its
    /// parameters: quoted local parts holding `>`, spaces, escapes and a combining mark.
    @Test func envelopePathsAndParametersReadBackAsWritten() throws {
        let addresses = ["a@b.example", "\"x>y z\"@b.example", "\"q\\\"x\"@b.example", "\"\u{301}a\"@b.example", "ü@b.example", "Postmaster"]
        let params = try MailParameters.parse("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2By@b.example")
        let e = Envelope(id: "X", arrival: 1, mailFrom: "\"s>t\"@a.example", mailParameters: try MailParameters.parse("BODY=8BITMIME SMTPUTF8"),
                         recipients: addresses.map { Recipient(address: $0, parameters: params) }, size: 1)
        let back = try Envelope.parse(e.write().split(separator: "\n"))
        #expect(back.mailFrom == e.mailFrom && back.mailParameters == e.mailParameters)
        #expect(back.recipients.map(\.address) == addresses)
        #expect(back.recipients.allSatisfy { $0.parameters == params })
        #expect(throws: SpoolFormatError.self) { try Envelope.parse(["id X", "arrival 1", "mail-from <a@b", "rcpt <a@b>", "size 1"]) }
    }

    @Test func envelopeKeepsGuardCountAndHoldReason() throws {
        var e = Envelope(id: "X", arrival: 1, mailFrom: "", recipients: [Recipient(address: "a@b")], size: 1)
        e.validGuards = 2
        e.holdReason = "mail loop: pass 3"
        let back = try Envelope.parse(e.write().split(separator: "\n"))
        #expect(back.validGuards == 2 && back.guardValid && back.holdReason == "mail loop: pass 3")
        // A file from before `valid-guards` existed.
        let old = try Envelope.parse(["id X", "arrival 1", "mail-from <>", "rcpt <a@b>", "size 1", "guard-valid yes"])
        #expect(old.validGuards == 1 && old.holdReason == nil)
    }
}


@Suite struct GroupCommitterTests {
    /// A complete, not yet committed file in `incoming/`.
    static func finishedWriter(_ layout: SpoolLayout, _ id: String) throws -> SpoolWriter {
        let w = try SpoolWriter(layout: layout, id: id)
        try w.append("Subject: \(id)\r\n\r\nbody\r\n")
        try w.finish(envelope: Envelope(id: id, arrival: 1, mailFrom: "a@b.c",
                                        recipients: [Recipient(address: "d@e.f")], size: w.messageBytes))
        return w
    }

    /// Synchronous mode: sync while scanning (no rename), then publish with only the rename.
    @Test(arguments: [false, true])
    func syncFirstThenPublish(concurrently: Bool) async throws {
        let spool = try TempSpool()
        let layout = spool.layout
        let committer = try GroupCommitter(layout: layout)
        let ids = (0..<(concurrently ? 16 : 1)).map { _ in QueueID.make() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids {
                group.addTask {
                    let w = try GroupCommitterTests.finishedWriter(layout, id)
                    try w.sync(committer: committer)
                    #expect(access(layout.path(id, .incoming), F_OK) == 0, "a sync alone publishes nothing")
                    try w.commit(to: .scan, committer: committer, synced: true)
                }
            }
            try await group.waitForAll()
        }
        #expect(try SysCall.listDirectory(layout.directory(.incoming)).isEmpty)
        #expect(Set(try SysCall.listDirectory(layout.directory(.scan))) == Set(ids))
    }

    /// Many sessions committing at once (with and without a leader waiting for companions):
    /// every file ends up in scan/, complete, and nothing is left in incoming/.
    @Test(arguments: [false, true])
    func concurrentCommitsAllLand(gather: Bool) async throws {
        let spool = try TempSpool()
        let layout = spool.layout
        let always: @Sendable () -> Bool = { true }
        let committer = try GroupCommitter(layout: layout, companionsExpected: gather ? always : nil)
        let ids = (0..<64).map { _ in QueueID.make() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids {
                group.addTask {
                    let w = try GroupCommitterTests.finishedWriter(layout, id)
                    try w.commit(to: .scan, committer: committer)
                }
            }
            try await group.waitForAll()
        }
        #expect(try SysCall.listDirectory(layout.directory(.incoming)).isEmpty)
        #expect(Set(try SysCall.listDirectory(layout.directory(.scan))) == Set(ids))
        for id in ids {
            let f = try SpoolFile.read(path: layout.path(id, .scan))
            #expect(String(buffer: try f.readMessage()) == "Subject: \(id)\r\n\r\nbody\r\n")
        }
    }

    /// A commit that cannot be renamed fails for its caller, and only for it.
    @Test func failedRenameIsReported() throws {
        let spool = try TempSpool()
        let committer = try GroupCommitter(layout: spool.layout)
        let w = try SpoolWriter(layout: spool.layout, id: QueueID.make())
        try w.append("x")
        try w.finish(envelope: Envelope(id: w.id, arrival: 1, mailFrom: "", recipients: [Recipient(address: "a@b.c")], size: 1))
        _ = rmdir(spool.layout.directory(.scan))
        #expect(throws: SpoolError.self) { try w.commit(to: .scan, committer: committer) }
    }

    /// A file whose fsync fails is refused alone: a file in the same batch that was synced
    /// before (synchronous mode) is still published.
    @Test func failedSyncFailsAloneInItsBatch() throws {
        let spool = try TempSpool()
        let layout = spool.layout
        let committer = try GroupCommitter(layout: layout)
        nonisolated(unsafe) let good = try GroupCommitterTests.finishedWriter(layout, QueueID.make())
        try good.sync(committer: committer)
        let badID = QueueID.make()
        let bad = try GroupCommitterTests.finishedWriter(layout, badID)
        // One leader, two requests: the bad one's descriptor is not a file that fsync accepts.
        let results = NIOLockedValueBox<[String: Bool]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { k in
            if k == 0 {
                do { try committer.commit(fd: -1, from: layout.path(badID, .incoming), to: layout.path(badID, .scan)) ; results.withLockedValue { $0["bad"] = true } }
                catch { results.withLockedValue { $0["bad"] = false } }
            } else {
                do { try good.commit(to: .scan, committer: committer, synced: true); results.withLockedValue { $0["good"] = true } }
                catch { results.withLockedValue { $0["good"] = false } }
            }
        }
        #expect(results.withLockedValue { $0 } == ["bad": false, "good": true])
        #expect(access(layout.path(badID, .incoming), F_OK) == 0 && access(layout.path(good.id, .scan), F_OK) == 0)
        bad.abort()
    }

    /// receiverd's form: sessions on two event loops hand their files to the commit thread and
    /// get each result back on their own loop, the verdict written before the file is published.
    @Test func commitsFromEventLoopsCompleteOnThem() async throws {
        let spool = try TempSpool()
        let layout = spool.layout
        let group = MultiThreadedEventLoopGroup.singleton
        let committer = try GroupCommitter(layout: layout)
        let ids = (0..<48).map { _ in QueueID.make() }
        let verdict = Verdict(scanned: 2, routes: [.init(recipient: 0, endpoint: "inet:25@192.0.2.9")])
        var futures: [EventLoopFuture<Bool>] = []
        for (k, id) in ids.enumerated() {
            let loop = group.next()
            let w = UncheckedBox(try GroupCommitterTests.finishedWriter(layout, id))
            futures.append(loop.flatSubmit {
                w.value.commit(to: .scan, verdict: k.isMultiple(of: 2) ? verdict : nil, committer: committer, synced: false,
                               prepare: {}, on: loop).map { loop.inEventLoop }
            })
        }
        let onTheirLoops = try await EventLoopFuture.whenAllSucceed(futures, on: group.next()).get()
        #expect(onTheirLoops.allSatisfy { $0 })
        #expect(try SysCall.listDirectory(layout.directory(.incoming)).isEmpty)
        for (k, id) in ids.enumerated() {
            let f = try SpoolFile.read(path: layout.path(id, .scan))
            #expect(String(buffer: try f.readMessage()) == "Subject: \(id)\r\n\r\nbody\r\n")
            #expect((f.verdict != nil) == k.isMultiple(of: 2), "\(id)")
        }
    }

    /// A request whose `prepare` throws (receiverd: the client left before its reply) fails
    /// alone and is not published; the others in its batch are.
    @Test func throwingPrepareFailsItsRequestAlone() async throws {
        struct Left: Error {}
        let spool = try TempSpool()
        let layout = spool.layout
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let committer = try GroupCommitter(layout: layout)
        let ids = (0..<8).map { _ in QueueID.make() }
        let writers = try ids.map { UncheckedBox(try GroupCommitterTests.finishedWriter(layout, $0)) }
        let results = try await loop.flatSubmit {
            EventLoopFuture.whenAllComplete(writers.enumerated().map { k, w in
                w.value.commit(to: .scan, verdict: nil, committer: committer, synced: false,
                               prepare: { if k == 3 { throw Left() } }, on: loop)
            }, on: loop)
        }.get()
        for (k, r) in results.enumerated() {
            if k == 3 {
                #expect(throws: Left.self) { try r.get() }
                #expect(access(layout.path(ids[k], .incoming), F_OK) == 0 && access(layout.path(ids[k], .scan), F_OK) != 0)
            } else {
                #expect(throws: Never.self) { try r.get() }
                #expect(access(layout.path(ids[k], .scan), F_OK) == 0)
            }
        }
        writers[3].value.abort()
    }
}

extension LoopGuardTests {
    /// Services are printed in full at debug level; the guard's key must not be.
    @Test func keyIsNeverPrinted() {
        struct Holder { let loopGuard = LoopGuard(key: Array("s3cr3t-key".utf8)) }
        for text in [String(describing: Holder()), String(reflecting: Holder()), "\(LoopGuard(key: [115, 51]))"] {
            #expect(!text.contains("115") && !text.contains("s3cr3t") && text.contains("redacted"), "\(text)")
        }
    }
}
