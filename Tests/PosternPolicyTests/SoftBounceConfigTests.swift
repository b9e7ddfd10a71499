@testable import PosternPolicy
import Testing

@Suite struct SoftBounceConfigTests {
    @Test func softBounceIsOffUnlessSetAndShownByConfigShow() throws {
        #expect(try !PosternConfig.parse("", path: "t").receiver.softBounce)
        let on = try PosternConfig.parse("[Receiver]\nSoftBounce = yes", path: "t")
        #expect(on.receiver.softBounce)
        let shown = ConfigRenderer.typedSections(on).first { $0.name == "Receiver" }?.keys.first { $0.0 == "SoftBounce" }
        #expect(shown?.1 == "yes")
    }
}
