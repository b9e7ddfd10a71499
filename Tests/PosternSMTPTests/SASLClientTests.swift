@testable import PosternSMTP
import PosternMIME
import PosternTestSupport
import PosternUtil
import Testing

/// SMTP AUTH PLAIN and LOGIN as ``SASLClient`` speaks them (RFC 4954, RFC 4616).
@Suite struct SASLClientTests {
    let credentials = SASLCredentials(username: "tim", password: "tanstaaftanstaaf")

    @Test(arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),   // RFC 4648 §10
    ])
    func base64(_ plain: String, _ encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
    }

    @Test func base64OfEveryByte() {
        let all = (0...255).map(UInt8.init)
        #expect(TransferDecoding.base64(Array(Base64.encode(all).utf8)) == all)
    }

    /// RFC 4616 §4's example message `\0tim\0tanstaaftanstaaf`.
    @Test func plainInOneRoundTrip() {
        var client = SASLClient(mechanism: .plain, credentials: credentials)
        #expect(client.start() == "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n")
        #expect(client.next(Reply(235, EnhancedStatus(2, 7, 0), "Authentication successful")) == .done)
    }

    @Test func plainWithUTF8Password() {
        let c = SASLCredentials(username: "relay", password: "pässwörd:x y")
        #expect(SASLClient.plainResponse(c) == Base64.encode([0] + Array("relay".utf8) + [0] + Array("pässwörd:x y".utf8)))
    }

    @Test func loginAnswersBothChallenges() {
        var client = SASLClient(mechanism: .login, credentials: credentials)
        #expect(client.start() == "AUTH LOGIN\r\n")
        #expect(client.next(Reply(334, nil, "VXNlcm5hbWU6")) == .send("dGlt\r\n"))
        #expect(client.next(Reply(334, nil, "UGFzc3dvcmQ6")) == .send("dGFuc3RhYWZ0YW5zdGFhZg==\r\n"))
        #expect(client.next(Reply(235, nil, "ok")) == .done)
    }

    @Test func refusalIsReturned() {
        var client = SASLClient(mechanism: .plain, credentials: credentials)
        _ = client.start()
        let refusal = Reply(535, EnhancedStatus(5, 7, 8), "Error: authentication failed")
        #expect(client.next(refusal) == .failed(refusal))
    }

    /// A server that keeps asking is cancelled with "*" (RFC 4954 §4), never sent anything else.
    @Test func tooManyChallengesAreCancelled() {
        var plain = SASLClient(mechanism: .plain, credentials: credentials)
        _ = plain.start()
        #expect(plain.next(Reply(334, nil, "")) == .send("*\r\n"))
        let cancelled = Reply(501, EnhancedStatus(5, 7, 0), "Authentication aborted")
        #expect(plain.next(cancelled) == .failed(cancelled))
        var login = SASLClient(mechanism: .login, credentials: credentials)
        _ = login.start()
        _ = login.next(Reply(334, nil, "VXNlcm5hbWU6"))
        _ = login.next(Reply(334, nil, "UGFzc3dvcmQ6"))
        #expect(login.next(Reply(334, nil, "more?")) == .send("*\r\n"))
        if case .failed = login.next(Reply(235, nil, "ok after cancel")) {} else { Issue.record("235 after a cancel accepted") }
    }

    @Test(arguments: [
        ("PLAIN LOGIN", SASLClient.Mechanism?.some(.plain)), ("login cram-md5", .login), ("LOGIN PLAIN", .plain),
        ("CRAM-MD5 SCRAM-SHA-256", nil), ("", nil),
    ])
    func mechanismChoice(_ offered: String, _ expected: SASLClient.Mechanism?) {
        #expect(SASLClient.choose(offered: offered) == expected)
    }
}
