import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// `posternctl quarantine digest`'s notices: one per recipient, listing each entry once, never
/// what an earlier digest listed or what the recipient has already had (released).
@Suite struct QuarantineDigestTests {
    static let template = "From: <$FILTER_MAIL$>\nTo: <$TO$>\nSubject: kept for you\n\n$DIGEST$\n"

    /// Stores a quarantine entry for `recipients`, with the routes' statuses; returns it as read.
    static func entry(_ q: Quarantine, subject: String, recipients: [(String, RecipientStatus)], offered: Set<Int> = []) throws -> QuarantineDigest.Entry {
        let message = Array("Subject: \(subject)\r\nFrom: <alice@example.com>\r\n\r\nbody\r\n".utf8)
        let envelope = Envelope(id: QueueID.make(), arrival: 1_800_000_000, clientIP: "192.0.2.1", mailFrom: "alice@example.com",
                                recipients: recipients.map { Recipient(address: $0.0) }, size: message.count)
        var verdict = Verdict(scanned: 1_800_000_001, action: .reject,
                              routes: recipients.indices.map { .init(recipient: $0, status: recipients[$0].1, endpoint: "inet:25@192.0.2.9") })
        for i in recipients.indices { verdict.reasons[i] = "banned name: setup.exe" }
        verdict.releaseOffered = offered
        let id = try q.store(envelope: envelope, message: message, verdict: verdict)
        let (file, body) = try q.read(id)
        return .init(id: id, file: file, headers: HeaderField.parseSection(Array(body.readableBytesView)))
    }

    static func digest(_ config: String = "", tokens: ReleaseToken? = nil) throws -> QuarantineDigest {
        let cfg = try PosternConfig.parse("[General]\nHostname = filter.example.com\n" + config, path: "t.conf")
        var d = QuarantineDigest(config: cfg, template: try NotificationTemplate.parse(Self.template, file: "d.txt").get(), tokens: tokens)
        var n = 0
        d.makeID = { n += 1; return "DIGEST\(n)" }
        return d
    }

    @Test func oneNoticePerRecipientWithEachEntryOnce() throws {
        let spool = try TempSpool()
        let q = Quarantine(directory: spool.layout.root + "/quarantine")
        let first = try Self.entry(q, subject: "first", recipients: [("bob@example.org", .pending), ("Carol@example.org", .pending)])
        let second = try Self.entry(q, subject: "second", recipients: [("BOB@example.org", .pending), ("dave@example.org", .delivered)])
        let notices = try Self.digest().notices([first, second], listed: [])
        #expect(notices.map(\.to) == ["bob@example.org", "Carol@example.org"], "dave had his copy: no digest")
        let bob = try #require(notices.first)
        #expect(bob.listed == [QuarantineDigest.key(first.id, "bob@example.org"), QuarantineDigest.key(second.id, "BOB@example.org")])
        #expect(bob.text.contains("* first\r\n") && bob.text.contains("* second\r\n"))
        #expect(bob.text.contains("    Reference: \(first.id)") && bob.text.contains("    Why:       banned name: setup.exe"))
        #expect(bob.from == "postern@filter.example.com")
        #expect(!bob.text.contains("Release:"), "no release address configured")
        // What an earlier digest listed is not listed again.
        let later = try Self.digest().notices([first, second], listed: Set(bob.listed))
        #expect(later.map(\.to) == ["Carol@example.org"])
        #expect(try Self.digest().notices([first, second], listed: Set(bob.listed + notices[1].listed)).isEmpty)
    }

    @Test func aReleaseAddressOnlyUnderWhatIsOffered() throws {
        let spool = try TempSpool()
        let q = Quarantine(directory: spool.layout.root + "/quarantine")
        let offered = try Self.entry(q, subject: "offered", recipients: [("bob@example.org", .pending)], offered: [0])
        let kept = try Self.entry(q, subject: "kept", recipients: [("bob@example.org", .pending)])
        let tokens = ReleaseToken(key: Array("digest-test-key".utf8), clock: { 1_800_000_000 })
        let digest = try Self.digest("[Quarantine]\nReleaseAddress = quarantine-release@filter.example.com\n", tokens: tokens)
        let notices = digest.notices([offered, kept], listed: [])
        #expect(notices.count == 1)
        let bob = try #require(notices.first)
        let lines = bob.text.components(separatedBy: "\r\n")
        let releases = lines.filter { $0.hasPrefix("    Release:   quarantine-release+") }
        #expect(releases.count == 1, "only the entry offered for release has an address")
        let token = try #require(releases.first.flatMap { ReleaseToken.token(in: String($0.dropFirst(15).prefix { $0 != " " }),
                                                                              releaseAddress: "quarantine-release@filter.example.com") })
        #expect(tokens.verify(token, recipient: "bob@example.org") == .success(offered.id))
    }
}
