@testable import PosternPolicy
import Testing

/// `[Sender] DelayWarningTime`: Postfix's delay_warning_time, off (0) unless set.
@Suite struct DelayWarningTimeTests {
    @Test func offByDefault() throws {
        #expect(try PosternConfig.parse("", path: "t").sender.delayWarningTime == .zero)
    }

    @Test(arguments: [("4h", Duration.seconds(4 * 3600)), ("90s", .seconds(90)), ("0", .zero), ("0s", .zero), ("1d", .seconds(86400))])
    func readsATimeOrZero(text: String, expected: Duration) throws {
        let config = try PosternConfig.parse("[Sender]\nDelayWarningTime = \(text)", path: "t")
        #expect(config.sender.delayWarningTime == expected)
    }

    @Test(arguments: ["-1h", "soon", "4x", ""])
    func refusesAnythingElse(text: String) {
        #expect(throws: ConfigErrors.self) { try PosternConfig.parse("[Sender]\nDelayWarningTime = \(text)", path: "t") }
    }

    /// `posternctl config show` prints it so that it reads back.
    @Test func shownAndReadBack() throws {
        let config = try PosternConfig.parse("[Sender]\nDelayWarningTime = 4h", path: "t")
        let shown = ConfigRenderer.render(config, all: true, showSecrets: true)
        #expect(shown.contains("DelayWarningTime = 4h"))
        #expect(try PosternConfig.parse(shown, path: "t").sender.delayWarningTime == .seconds(4 * 3600))
        #expect(ConfigRenderer.render(try PosternConfig.parse("", path: "t"), all: true).contains("DelayWarningTime = 0s"))
    }
}
