import Testing
@testable import Shared

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func knownDigests(_ input: String, _ hex: String) {
        #expect(SHA256.hash(input).hex == hex)
    }

    @Test func incrementalEqualsOneShot() {
        let text = String(repeating: "0123456789", count: 50)
        var d = SHA256()
        for ch in text { d.update(String(ch)) }
        #expect(d.finalize() == SHA256.hash(text))
    }

    /// RFC 4231 test cases 1 and 2.
    @Test func hmacVectors() {
        #expect(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: "Hi There").hex
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(HMACSHA256.mac(key: Array("Jefe".utf8), message: "what do ya want for nothing?").hex
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
