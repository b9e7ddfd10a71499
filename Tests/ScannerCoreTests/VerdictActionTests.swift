import PosternSpool
import Testing

/// The verdict's word is written and read back unchanged, including words this version does
/// not write itself.
@Suite struct VerdictActionTests {
    @Test(arguments: ["pass", "reject", "tempfail", "discard", "split", "released from quarantine 0123456789ABCDEF", "greylist"])
    func roundTrip(word: String) {
        #expect(VerdictAction(word).description == word)
    }

    @Test func released() {
        #expect(VerdictAction("released from quarantine ABC") == .released(from: "ABC"))
        #expect(VerdictAction("something new") == .other("something new"))
    }
}
