import Crypto
import PosternTestSupport
@testable import PosternUtil
import Testing

/// The digests Postern writes (body hash, loop-guard MAC) are swift-crypto's; these known
/// answers pin the hex form they take in the spool and in headers.
@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func knownDigests(_ input: String, _ hex: String) {
        #expect(SHA256.hash(data: Array(input.utf8)).hex == hex)
    }

    @Test func incrementalEqualsOneShot() {
        let text = String(repeating: "0123456789", count: 50)
        var d = SHA256()
        for ch in text.utf8 { d.update(data: [ch]) }
        #expect(d.finalize() == SHA256.hash(data: Array(text.utf8)))
    }

    /// RFC 4231 test cases 1 and 2.
    @Test func hmacVectors() {
        #expect(HMAC<SHA256>.authenticationCode(for: Array("Hi There".utf8), using: SymmetricKey(data: [UInt8](repeating: 0x0b, count: 20))).hex
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(HMAC<SHA256>.authenticationCode(for: Array("what do ya want for nothing?".utf8), using: SymmetricKey(data: Array("Jefe".utf8))).hex
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hexRoundTrip() {
        #expect([UInt8](hex: "00ff7Fa0") == [0, 255, 127, 160])
        #expect([UInt8](hex: "0") == nil && [UInt8](hex: "zz") == nil)
        #expect([UInt8](0...255).hex.count == 512 && [UInt8](hex: Substring([UInt8](0...255).hex)) == [UInt8](0...255))
    }
}
