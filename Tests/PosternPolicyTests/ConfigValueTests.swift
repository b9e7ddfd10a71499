import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Sizes, times and booleans.
@Suite struct ConfigValueTests {
    @Test(arguments: [
        ("0", 0), ("1024", 1024), ("400k", 400 * 1024), ("10m", 10 << 20), ("10M", 10 << 20),
        ("1g", 1 << 30), ("2t", 2 << 40), ("512b", 512),
    ])
    func sizes(text: String, expected: Int) {
        #expect(ValueSyntax.parseSize(text) == expected)
    }

    @Test(arguments: ["", "m", "10x", "1.5m", "-1", "k10", "99999999999999999999", "9999999999999t"])
    func badSizes(text: String) {
        #expect(ValueSyntax.parseSize(text) == nil)
    }

    @Test(arguments: [
        ("30s", Duration.seconds(30)), ("5m", .seconds(300)), ("2h", .seconds(7200)),
        ("1d", .seconds(86400)), ("500ms", .milliseconds(500)), ("45", .seconds(45)),
        ("1h30m", .seconds(5400)), ("1w", .seconds(604_800)), ("10S", .seconds(10)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(ValueSyntax.parseDuration(text) == expected)
    }

    // Over maxDuration, found by the value-syntax fuzz target (Fuzz/Regressions/value-syntax/):
    // accepted, `[Receiver] CommandTimeout = 999999999999` made receiverd trap on an overflow
    // in its once-a-second timeout check, and format() wrote 5m9999999999w as 15 digits.
    @Test(arguments: ["", "s", "5x", "5 m", "m5", "1.5h", "-3s", "1000000000", "999999999999", "1654w",
                      "5m9999999999w", String(repeating: "999999999999w", count: 20)])
    func badDurations(text: String) {
        #expect(ValueSyntax.parseDuration(text) == nil)
    }

    @Test func longestDurationRoundTrips() {
        #expect(ValueSyntax.parseDuration("999999999") == ValueSyntax.maxDuration)
        #expect(ValueSyntax.parseDuration("1653w") == .seconds(1653 * 604_800))
        let longest = ValueSyntax.maxDuration - .milliseconds(1)
        #expect(ValueSyntax.parseDuration(ValueSyntax.format(longest)) == longest)
        #expect(Monotonic.nanoseconds(ValueSyntax.maxDuration) == 999_999_999_000_000_000)
    }

    @Test(arguments: [
        ("yes", true), ("Yes", true), ("true", true), ("ON", true),
        ("no", false), ("false", false), ("off", false), ("maybe", nil), ("1", nil),
    ] as [(String, Bool?)])
    func booleans(text: String, expected: Bool?) {
        #expect(ValueSyntax.parseBool(text) == expected)
    }

    @Test(arguments: [
        (Duration.seconds(300), "5m"), (.seconds(30), "30s"), (.milliseconds(1500), "1500ms"),
        (.seconds(86400 * 5), "5d"), (.seconds(3600), "1h"), (.seconds(90), "90s"),
    ])
    func durationFormatting(duration: Duration, expected: String) {
        #expect(ValueSyntax.format(duration) == expected)
        #expect(ValueSyntax.parseDuration(expected) == duration)
    }
}
