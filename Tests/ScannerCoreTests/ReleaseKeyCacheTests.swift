import PosternPolicy
import PosternSpool
import PosternTestSupport
@testable import ScannerCore
import Testing

/// The release key is read once per configured secret, not for every notice and request.
@Suite struct ReleaseKeyCacheTests {
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
}
