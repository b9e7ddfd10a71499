import PosternPolicy
import PosternUtil
import PosternSpool
import PosternTestSupport
@testable import ScannerCore
import Testing

/// Release by reply: the key is read once per configured secret, not for every notice and
/// request; a token releases once.
@Suite struct ReplyReleaseTests {
    @Test func theKeyIsReadOnceAndAgainWhenTheSecretChanges() throws {
        let spool = try TempSpool()
        let keys = ReleaseKeyCache()
        let made = try keys.key(secret: "", layout: spool.layout)
        #expect(try keys.key(secret: "", layout: spool.layout) == made)
        #expect(keys.reads == 1)
        #expect(try keys.key(secret: "configured", layout: spool.layout) == Array("configured".utf8))
        #expect(keys.reads == 2, "a reload with another ReleaseSecret reads it again")
        #expect(try keys.key(secret: "", layout: spool.layout) == made)
    }

    /// A request decided with the cache: a forged token is refused, a missing key is not made.
    @Test func aReleaseRequestUsesTheCachedKey() throws {
        let spool = try TempSpool()
        let config = try PosternConfig.parse("[Quarantine]\nReleaseSecret = s3cret\n", path: "t.conf")
        let keys = ReleaseKeyCache()
        let release = ReplyRelease(config: config, layout: spool.layout, keys: keys)
        let forged = String(repeating: "A", count: ReleaseToken.length)
        guard case .refused(nil, _) = release.decide(token: forged, sender: "bob@example.org") else { Issue.record("a forged token released"); return }
        _ = release.decide(token: forged, sender: "bob@example.org")
        #expect(keys.reads == 1)
        #expect(release.decide(token: forged, sender: "") == .refused(entry: nil, why: "from the null sender"))
    }

    /// A genuine token releases once: the entry marks the recipient, and the same token again
    /// is refused, while another recipient's token still works.
    @Test func aTokenReleasesOnce() throws {
        let spool = try TempSpool()
        let config = try PosternConfig.parse("[Quarantine]\nReleaseSecret = s3cret\nPath = \(spool.layout.root)/quarantine\n", path: "t.conf")
        let q = Quarantine(directory: config.quarantine.path)
        let message = Array("Subject: kept\r\n\r\nbody\r\n".utf8)
        let envelope = Envelope(id: QueueID.make(), arrival: 1_800_000_000, clientIP: "192.0.2.1", mailFrom: "alice@example.com",
                                recipients: [Recipient(address: "bob@example.org"), Recipient(address: "carol@example.org")], size: message.count)
        var verdict = Verdict(scanned: 1_800_000_001, action: .reject,
                              routes: [.init(recipient: 0, endpoint: "inet:25@192.0.2.9"), .init(recipient: 1, endpoint: "inet:25@192.0.2.9")])
        verdict.releaseOffered = [0, 1]
        let id = try q.store(envelope: envelope, message: message, verdict: verdict)
        let tokens = ReleaseToken(key: Array("s3cret".utf8))
        let release = ReplyRelease(config: config, layout: spool.layout)
        let bobs = tokens.make(id: id, recipient: "bob@example.org", lifetime: .seconds(3600))
        guard case .released(id, let copy) = release.decide(token: bobs, sender: "bob@example.org") else { Issue.record("not released"); return }
        #expect(try SpoolFile.read(path: spool.layout.path(copy, .outgoing)).verdict?.routes.map(\.recipient) == [0], "for bob alone")
        #expect(release.decide(token: bobs, sender: "bob@example.org") == .refused(entry: id, why: "already released to <bob@example.org>"))
        #expect(try q.read(id).0.verdict?.routes.map(\.status) == [.delivered, .pending])
        let carols = tokens.make(id: id, recipient: "carol@example.org", lifetime: .seconds(3600))
        guard case .released = release.decide(token: carols, sender: "carol@example.org") else { Issue.record("carol's refused"); return }
    }
}
