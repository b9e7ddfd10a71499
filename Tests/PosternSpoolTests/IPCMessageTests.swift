import NIOCore
import PosternSMTP
import PosternSpool
import Testing

/// The lines between the daemons, the PRESCAN/VERDICT exchange above all (docs/ipc.md).
@Suite struct IPCMessageTests {
    static func verdict() -> Verdict {
        var v = Verdict(scanned: 1795687549.61, action: "split", routes: [.init(recipient: 0, endpoint: "inet:10025@127.0.0.1"),
                                                                         .init(recipient: 1, status: .dropped, endpoint: "inet:10025@127.0.0.1")])
        v.findings = ["clamav infected: Eicar-Test-Signature"]
        v.reasons = [1: "clamav: infected: Eicar-Test-Signature"]
        v.recipientHeaders = [0: ["X-Tag: one"]]
        return v
    }

    static func text(_ m: IPCMessage) -> String {
        var b = ByteBuffer()
        m.write(into: &b)
        return String(buffer: b)
    }

    @Test func verdictsRoundTripWithTheirSection() {
        let id = QueueID.make()
        let v = Self.verdict()
        let m = IPCMessage.verdict(id: id, outcomes: [.queued(id: id), .contentRejected(reason: "clamav: infected:\r\nEicar")], verdict: v)
        let text = Self.text(m)
        let section = v.write()
        #expect(text == "VERDICT \(id) queued,content-rejected \(section.utf8.count) clamav: infected:??Eicar\n" + section)
        #expect(IPCMessage.parse(Substring(text)) == .verdict(id: id, outcomes: [.queued(id: id), .contentRejected(reason: "clamav: infected:??Eicar")],
                                                              verdict: v))
        // Raw reply codes are not outcomes; nor is anything but the three a scan can give.
        #expect(IPCMessage.parse(Substring("VERDICT \(id) 250,550 \(section.utf8.count) x\n" + section)) == nil)
        #expect(IPCMessage.parse(Substring("VERDICT \(id) queued,disk-full \(section.utf8.count) x\n" + section)) == nil)
        // The section must be whole, and name no recipient the outcomes do not have.
        #expect(IPCMessage.parse(Substring("VERDICT \(id) queued,queued 12 x\n" + section.prefix(12))) == nil)
        #expect(IPCMessage.parse(Substring("VERDICT \(id) queued \(section.utf8.count) \n" + section)) == nil)
    }

    @Test func requestsAndWakeUps() {
        let id = QueueID.make()
        #expect(Self.text(.prescan(id: id)) == "PRESCAN \(id)\n")
        #expect(IPCMessage.parse(Substring("PRESCAN \(id)")) == .prescan(id: id))
        #expect(IPCMessage.parse(Substring("PRESCAN \(id) 123456789")) == nil, "no deadline crosses the socket any more")
        #expect(IPCMessage.parse("PRESCAN ../etc/passwd") == nil)
        #expect(IPCMessage.parse(Substring("UNSCANNED \(id) internal error")) == .unscanned(id: id, reason: "internal error"))
        // A trailing space is an empty reason, not a crash; the reason keeps its spaces.
        #expect(IPCMessage.parse(Substring("UNSCANNED \(id) ")) == .unscanned(id: id, reason: ""))
        #expect(IPCMessage.parse(Substring("UNSCANNED \(id)  two  spaces")) == .unscanned(id: id, reason: " two  spaces"))
        #expect(IPCMessage.parse(Substring("SCAN \(id)")) == .scan(id: id))
        #expect(IPCMessage.parse(Substring("DELIVER \(id)")) == .deliver(id: id))
        #expect(IPCMessage.parse("FLUSH") == .flush)
        #expect(IPCMessage.parse("SCAN") == nil)
    }

    @Test func aReasonInAVerdictLineIsShortAndPrintable() {
        let id = QueueID.make()
        let text = Self.text(.verdict(id: id, outcomes: [.contentRejected(reason: "attachments: banned: " + String(repeating: "é", count: 600))],
                                      verdict: Verdict(scanned: 1, routes: [.init(recipient: 0, status: .dropped, endpoint: "inet:25@h")])))
        let line = text.prefix { $0 != "\n" }
        #expect(line.utf8.count < 512)
        #expect(line.utf8.allSatisfy { $0 >= 32 && $0 < 127 })
    }

    /// A verdict arrives in pieces, its section split anywhere: the reader waits for all of it.
    @Test func theReaderWaitsForAWholeSection() throws {
        let id = QueueID.make()
        let all = Self.text(.verdict(id: id, outcomes: [.queued(id: id), .queued(id: id)], verdict: Self.verdict()))
            + "SCAN \(id)\n"
        for cut in stride(from: 1, to: all.utf8.count, by: 7) {
            var reader = IPCReader()
            var buffer = ByteBuffer(string: String(all.utf8.prefix(cut))!)
            var got: [IPCMessage] = []
            while let m = try reader.next(from: &buffer) { got.append(m) }
            buffer.writeString(String(all.utf8.dropFirst(cut))!)
            while let m = try reader.next(from: &buffer) { got.append(m) }
            #expect(got == [.verdict(id: id, outcomes: [.queued(id: id), .queued(id: id)], verdict: Self.verdict()), .scan(id: id)])
        }
    }

    @Test func garbageIsAnError() {
        var reader = IPCReader()
        var buffer = ByteBuffer(string: "HELLO there\n")
        #expect(throws: IPCReader.Garbage.self) { _ = try reader.next(from: &buffer) }
        var long = ByteBuffer(string: String(repeating: "x", count: IPCMessage.maxLine + 1) + "\n")
        var fresh = IPCReader()
        #expect(throws: IPCReader.Garbage.self) { _ = try fresh.next(from: &long) }
    }
}
