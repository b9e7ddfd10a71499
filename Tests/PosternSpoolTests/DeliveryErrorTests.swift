import Glibc
import NIOCore
import PosternMIME
import PosternSMTP
@testable import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Each route's last delivery error, after the verdict (docs/spool-format.md, "Delivery errors").
@Suite struct DeliveryErrorTests {
    func scanned(_ spool: borrowing TempSpool) throws -> String {
        let id = try spool.write("Subject: x\r\n\r\nbody\r\n") { id, size in
            Envelope(id: id, arrival: 1_700_000_000, mailFrom: "a@example.com",
                     recipients: [Recipient(address: "b@example.org"), Recipient(address: "c@example.org")], size: size)
        }
        let f = try SpoolFile.read(path: spool.layout.path(id, .scan))
        try f.writeVerdict(Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
                                                        .init(recipient: 1, endpoint: "inet:10025@192.0.2.1")]), sync: false)
        return id
    }

    @Test func writtenAfterTheVerdictAndReadBack() throws {
        let spool = try TempSpool()
        let id = try scanned(spool)
        let path = spool.layout.path(id, .scan)
        let f = try SpoolFile.read(path: path)
        #expect(f.deliveryErrors.isEmpty)   // a file without the section (as every older one)
        try f.writeDeliveryErrors([1: DeliveryError(time: 1_700_000_100.5, text: "451 4.3.0 Try again\nlater")])
        let g = try SpoolFile.read(path: path)
        #expect(g.deliveryErrors == [1: DeliveryError(time: 1_700_000_100.5, text: "451 4.3.0 Try again?later")])
        #expect(g.verdict == f.verdict)
        #expect(String(buffer: try g.readMessage()) == "Subject: x\r\n\r\nbody\r\n")
        let text = String(decoding: try SysCall.readFile(path), as: UTF8.self)
        #expect(text.hasSuffix("end verdict\nerror 1 1700000100.5 451 4.3.0 Try again?later\nend errors\n"))
    }

    @Test func inPlaceUpdatesStillWorkAndTheSectionIsReplaced() throws {
        let spool = try TempSpool()
        let id = try scanned(spool)
        let path = spool.layout.path(id, .scan)
        let f = try SpoolFile.read(path: path)
        try f.writeDeliveryErrors([0: DeliveryError(time: 1, text: "first"), 1: DeliveryError(time: 1, text: "second")])
        // senderd's order: errors, then statuses and attempts (with the one fsync).
        let g = try SpoolFile.read(path: path)
        try g.writeDeliveryErrors([1: DeliveryError(time: 2, text: "later")])
        try g.update(statuses: [(route: 0, status: .delivered)], attempts: 2, sync: true)
        let h = try SpoolFile.read(path: path)
        #expect(h.verdict?.routes.map(\.status) == [.delivered, .pending])
        #expect(h.verdict?.attempts == 2)
        #expect(h.deliveryErrors == [1: DeliveryError(time: 2, text: "later")])
        try h.writeDeliveryErrors([:])
        #expect(try SpoolFile.read(path: path).deliveryErrors.isEmpty)
    }

    @Test func aTornSectionIsIgnoredAndANewVerdictDropsIt() throws {
        let spool = try TempSpool()
        let id = try scanned(spool)
        let path = spool.layout.path(id, .scan)
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = Glibc.write(fd, "error 0 5 half a li", 19)   // senderd died while writing
        close(fd)
        let f = try SpoolFile.read(path: path)
        #expect(f.deliveryErrors.isEmpty && f.verdict != nil && !f.verdictIncomplete)
        try f.writeDeliveryErrors([0: DeliveryError(time: 5, text: "whole")])
        let g = try SpoolFile.read(path: path)
        #expect(g.deliveryErrors[0]?.text == "whole")
        try g.writeVerdict(Verdict(scanned: 3, routes: [.init(recipient: 0, endpoint: "inet:25@[::1]")]), sync: false)
        #expect(try SpoolFile.read(path: path).deliveryErrors.isEmpty)   // a new verdict starts afresh
    }

    @Test func badLinesAndUnknownRoutesAreSkipped() {
        let lines: [Substring] = ["error 0 10 ok", "error 7 10 no such route", "error x 10 bad", "error 1 soon bad",
                                  "future-line 1 2 3", "error 1 11.5 two words"]
        #expect(DeliveryError.parse(lines, routes: 2) == [0: DeliveryError(time: 10, text: "ok"),
                                                          1: DeliveryError(time: 11.5, text: "two words")])
    }

    @Test func longTextsAreCut() {
        let text = DeliveryError.write([0: DeliveryError(time: 1, text: String(repeating: "x", count: 5000))])
        #expect(text.utf8.count < DeliveryError.maximumText + 40)
    }

    @Test func aMissingStateDirectoryIsAnErrorForListIDs() throws {
        let spool = try TempSpool()
        rmdir(spool.layout.directory(.hold))
        #expect(spool.layout.ids(in: .hold).isEmpty)                 // the daemons' lenient listing
        #expect(throws: SpoolError.self) { try spool.layout.listIDs(in: .hold) }
        #expect(try spool.layout.listIDs(in: .deferred).isEmpty)
    }
}

/// The delay DSNs sent, kept with the delivery errors so that each route is warned once.
@Suite struct DelayWarningRecordTests {
    @Test func writtenWithTheErrorsAndReadBack() throws {
        let spool = try TempSpool()
        let id = try DeliveryErrorTests().scanned(spool)
        let path = spool.layout.path(id, .scan)
        let f = try SpoolFile.read(path: path)
        #expect(f.delayWarnings.isEmpty)
        try f.writeDeliveryErrors([1: DeliveryError(time: 7, text: "451 4.2.0 later")], warned: [1: 7.5])
        let g = try SpoolFile.read(path: path)
        #expect(g.delayWarnings == [1: 7.5] && g.deliveryErrors[1]?.text == "451 4.2.0 later")
        let text = String(decoding: try SysCall.readFile(path), as: UTF8.self)
        #expect(text.hasSuffix("end verdict\nerror 1 7.0 451 4.2.0 later\nwarned 1 7.5\nend errors\n"))
        // Kept by the next attempt's rewrite, also without errors.
        try g.writeDeliveryErrors([:], warned: g.delayWarnings)
        #expect(try SpoolFile.read(path: path).delayWarnings == [1: 7.5])
    }

    /// Lines of another kind, damaged ones and routes the verdict lacks are skipped; older
    /// readers (DeliveryError.parse) skip the `warned` lines.
    @Test func parsingIsLenient() {
        let lines: [Substring] = ["warned 0 5", "warned 1", "warned 9 5", "warned x 5", "error 1 5 text", "warned 1 6 extra"]
        #expect(DeliveryError.parseWarnings(lines, routes: 2) == [0: 5])
        #expect(DeliveryError.parse(lines, routes: 2) == [1: DeliveryError(time: 5, text: "text")])
    }

    @Test func aTornSectionLosesTheRecord() throws {
        let spool = try TempSpool()
        let id = try DeliveryErrorTests().scanned(spool)
        let path = spool.layout.path(id, .scan)
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = Glibc.write(fd, "warned 0 5\n", 11)   // no end marker: senderd died while writing
        close(fd)
        #expect(try SpoolFile.read(path: path).delayWarnings.isEmpty)
    }
}
