import Glibc
import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// The verdict's scan fields and the quarantine store (the PRESCAN/VERDICT exchange:
/// PosternSpoolTests/IPCMessageTests).
@Suite struct ScanSpoolTests {
    static func envelope(_ id: String, size: Int) -> Envelope {
        Envelope(id: id, arrival: WallClock.seconds, clientIP: "192.0.2.1", mailFrom: "a@example.com",
                 recipients: [Recipient(address: "b@example.org"), Recipient(address: "c@example.org")], size: size)
    }

    static func write(_ spool: borrowing TempSpool, message: String) throws -> String {
        try spool.write(message) { envelope($0, size: $1) }
    }

    @Test func scanFieldsSurviveTheSpoolAndStatusesUpdateInPlace() throws {
        let spool = try TempSpool()
        let id = try Self.write(spool, message: "Subject: x\r\n\r\nbody\r\n")
        let path = spool.layout.path(id, .scan)
        var v = Verdict(scanned: 1, action: "split", routes: [.init(recipient: 0, endpoint: "inet:25@h"),
                                                             .init(recipient: 1, status: .blocked, endpoint: "inet:25@h")])
        v.afterQueuePending = true
        v.score = 7.5
        v.findings = ["clamav infected: Eicar-Test-Signature"]
        v.reasons = [1: "clamav: infected: Eicar-Test-Signature"]
        v.addHeaders = ["X-Spam-Flag: YES"]
        v.recipientHeaders = [0: ["X-Tag: one", "X-Other: two"]]
        v.releaseOffered = [1]
        try SpoolFile.read(path: path).writeVerdict(v, sync: false)
        let back = try SpoolFile.read(path: path)
        #expect(back.verdict == v)
        try back.update(statuses: [(1, .dropped)], attempts: nil, sync: false)
        #expect(try SpoolFile.read(path: path).verdict?.routes.map(\.status) == [.pending, .dropped])
    }

    @Test func quarantineStoresListsReleasesAndPrunes() throws {
        let spool = try TempSpool()
        let q = Quarantine(directory: spool.layout.root + "/q")
        let message = "Subject: EICAR\r\n\r\nX5O!P%@AP\r\n"
        let id = QueueID.make()
        var v = Verdict(scanned: 1, action: "reject", routes: [.init(recipient: 1, endpoint: "inet:25@h")])
        v.reasons = [1: "clamav: infected: Eicar-Test-Signature"]
        try q.store(envelope: Self.envelope(id, size: message.utf8.count), message: Array(message.utf8), verdict: v)
        #expect(q.ids() == [id])
        let (entry, body) = try q.read(id)
        #expect(String(buffer: body) == message)
        #expect(entry.verdict?.reasons[1] == "clamav: infected: Eicar-Test-Signature")

        let config = try PosternConfig.parse("[Sender]\nAddress = inet:2525@127.0.0.1", path: "t")
        let first = try q.release(id, only: nil, layout: spool.layout, resolver: RouteResolver(config: config))
        #expect(first.recipients == ["c@example.org"])
        let newID = first.id
        let (released, releasedBody) = try SpoolFile.readWithMessage(path: spool.layout.path(newID, .outgoing))
        #expect(String(buffer: releasedBody) == message)
        #expect(released.envelope.id == newID && released.envelope.mailFrom == "a@example.com")
        // Only the blocked recipient gets it, unscanned, by the default route.
        #expect(released.verdict?.routes == [.init(recipient: 1, endpoint: "inet:2525@127.0.0.1")])
        #expect(throws: QuarantineError.self) {
            try q.release(id, only: ["nobody@example.org"], layout: spool.layout, resolver: RouteResolver(config: config))
        }

        // --to: the one address given instead of the recipients, without their DSN requests.
        let redirected = try q.release(id, only: nil, to: "review@example.net", layout: spool.layout, resolver: RouteResolver(config: config))
        #expect(redirected.recipients == ["review@example.net"])
        let copy = try SpoolFile.read(path: spool.layout.path(redirected.id, .outgoing))
        #expect(copy.envelope.recipients == [Recipient(address: "review@example.net")])
        #expect(copy.verdict?.routes == [.init(recipient: 0, endpoint: "inet:2525@127.0.0.1")])
        #expect(copy.verdict?.action == .released(from: id))

        #expect(q.prune(storedTime: .seconds(86400), maxSize: 1 << 20).isEmpty)
        #expect(q.prune(storedTime: .seconds(86400), maxSize: 10) == [id])   // over MaxSize
        try q.store(envelope: Self.envelope(id, size: message.utf8.count), message: Array(message.utf8), verdict: v)
        #expect(q.prune(storedTime: .seconds(1), maxSize: 1 << 20, now: WallClock.seconds + 10) == [id])   // too old
        #expect(q.ids().isEmpty)
    }
}
