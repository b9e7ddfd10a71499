import NIOConcurrencyHelpers
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct ReleaseTokenTests {
    let id = "K15CH0P6VZ4M2K3D8A1Q"
    let key = Array("a secret of the test, long enough".utf8)

    /// A clock the test moves by hand.
    final class FakeClock: Sendable {
        let now = NIOLockedValueBox(1_800_000_000)
        var read: @Sendable () -> Int { { [now] in now.withLockedValue { $0 } } }
        func advance(_ seconds: Int) { now.withLockedValue { $0 += seconds } }
    }

    @Test func aTokenReleasesForItsRecipientUntilItExpires() {
        let clock = FakeClock()
        let tokens = ReleaseToken(key: key, clock: clock.read)
        let token = tokens.make(id: id, recipient: "bob@example.org", lifetime: .seconds(3600))
        #expect(token.utf8.count == ReleaseToken.length && ReleaseToken.length == 43)
        #expect(token.hasPrefix(id))
        #expect(tokens.verify(token, recipient: "bob@example.org") == .success(id))
        // MTAs may change the case of an address; the token and the address are read without it.
        #expect(tokens.verify(token.lowercased(), recipient: "Bob@Example.ORG") == .success(id))
        clock.advance(3599)
        #expect(tokens.verify(token, recipient: "bob@example.org") == .success(id))
        clock.advance(1)
        #expect(tokens.verify(token, recipient: "bob@example.org") == .failure(.expired(at: 1_800_003_600)))
    }

    @Test func anotherRecipientOrKeyIsRefused() {
        let clock = FakeClock()
        let token = ReleaseToken(key: key, clock: clock.read).make(id: id, recipient: "bob@example.org", lifetime: .seconds(60))
        #expect(ReleaseToken(key: key, clock: clock.read).verify(token, recipient: "mallory@example.org") == .failure(.forged))
        #expect(ReleaseToken(key: Array("another key".utf8), clock: clock.read).verify(token, recipient: "bob@example.org") == .failure(.forged))
    }

    /// Changing any one character — the id (another message), the expiry (a longer life), the
    /// MAC — makes a token that is refused; so does an expired forgery, as forged, not expired.
    @Test(arguments: 0..<ReleaseToken.length)
    func everyAlteredCharacterIsRefused(position: Int) {
        let clock = FakeClock()
        let tokens = ReleaseToken(key: key, clock: clock.read)
        let token = Array(tokens.make(id: id, recipient: "bob@example.org", lifetime: .seconds(60)).utf8)
        var altered = token
        altered[position] = altered[position] == UInt8(ascii: "Z") ? UInt8(ascii: "Y") : UInt8(ascii: "Z")
        let text = String(decoding: altered, as: UTF8.self)
        #expect(tokens.verify(text, recipient: "bob@example.org") == .failure(.forged))
        clock.advance(120)
        #expect(tokens.verify(text, recipient: "bob@example.org") == .failure(.forged))
    }

    @Test(arguments: ["", "short", String(repeating: "0", count: 42), String(repeating: "0", count: 44),
                      "K15CH0P6VZ4M2K3D8A1Q000000000000000000000U0", "K15CH0P6VZ4M2K3D8A1Q+00000000000000000000000"])
    func notATokenIsMalformed(text: String) {
        #expect(ReleaseToken(key: key).verify(text, recipient: "bob@example.org") == .failure(.malformed))
    }

    @Test func theKeyIsKeptInTheSpoolWhenNoneIsConfigured() throws {
        let spool = try TempSpool()
        #expect(throws: SpoolError.self) { try ReleaseToken.loadKey(secret: "", layout: spool.layout, create: false) }
        let made = try ReleaseToken.loadKey(secret: "", layout: spool.layout)
        #expect(made.count == 64)
        #expect(try ReleaseToken.loadKey(secret: "", layout: spool.layout, create: false) == made)
        #expect(try ReleaseToken.loadKey(secret: "configured", layout: spool.layout) == Array("configured".utf8))
        #expect("\(ReleaseToken(key: made))" == "ReleaseToken(key: <redacted>)")
    }

    /// The spool's key files are the ones `SpoolSecret.files` lists (what a switch to
    /// `[General] User` hands over) and are named `.NAME-key` (what listings leave out).
    @Test func everyKeyFileIsListed() throws {
        let spool = try TempSpool()
        _ = try ReleaseToken.loadKey(secret: "", layout: spool.layout)
        _ = try LoopGuard.loadKey(secureHash: "", layout: spool.layout)
        let made = try SysCall.listDirectory(spool.layout.root).filter { $0.hasPrefix(".") }
        #expect(Set(made) == Set(SpoolSecret.files))
        #expect(SpoolSecret.files.allSatisfy { $0.hasPrefix(".") && $0.hasSuffix("-key") })
    }
}

@Suite struct ReleaseAddressTests {
    @Test func theTokenGoesAfterAPlusAndComesBack() {
        let token = String(repeating: "A", count: ReleaseToken.length)
        let address = ReleaseToken.address("quarantine-release@example.com", token: token)
        #expect(address == "quarantine-release+\(token)@example.com")
        #expect(ReleaseToken.token(in: address, releaseAddress: "quarantine-release@example.com") == token)
        #expect(ReleaseToken.token(in: "Quarantine-Release+abc@EXAMPLE.com", releaseAddress: "quarantine-release@example.com") == "abc")
        #expect(ReleaseToken.token(in: "quarantine-release@example.com", releaseAddress: "quarantine-release@example.com") == "")
        for other in ["quarantine-release+x@example.org", "quarantine-releasex@example.com", "bob@example.com", "quarantine-release"] {
            #expect(ReleaseToken.token(in: other, releaseAddress: "quarantine-release@example.com") == nil)
        }
    }
}
