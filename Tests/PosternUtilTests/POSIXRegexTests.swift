import PosternUtil
import Testing

/// Rules and header filters compile POSIX regular expressions with glibc, which copies what
/// a repetition repeats: a pattern that would expand past the limit is refused before
/// `regcomp` can take gigabytes (found by the `rules` fuzz target: a `+` repeated 89 times).
@Suite struct POSIXRegexTests {
    @Test(arguments: [
        ("^y(es)?$", 7), ("abc", 3), ("a*", 2), ("a+", 2), ("a{3}", 3), ("a{3,}", 4), ("(ab){3}", 6),
        ("a{1,1000}", 1000 + 999 * 999 / 100), ("[a+*]{2}", 2), ("[]+]{2}", 2), ("[[:alpha:]+]{2}", 2),
        ("\\+{2}", 2), ("a|b|c", 5), ("(a|b)*", 6), ("a{,", 3), ("a{x}", 4), ("((a{10}){10}){10}", 1000),
        // A repetition stacked on another counts four times.
        ("a+?", 8), ("^y(es)?+", 18), ("a{2}*", 8), ("(a*)*", 4),
    ])
    func expandedSize(_ pattern: String, _ size: Int) {
        #expect(POSIXRegex.expandedSize(pattern) == size, "\(pattern)")
    }

    @Test func stackedAndNestedRepetitionsAreRefused() throws {
        // Found by the `rules` fuzz target: twelve stacked `+` passed the limit when each
        // counted twice, and took 24 s in regcomp.
        for pattern in ["ab" + String(repeating: "+", count: 89), "((a{99}){99}){99}", "a{1,5000}", "(x{100}){300}",
                        "^y(es)?" + String(repeating: "+", count: 11)] {
            #expect(POSIXRegex.expandedSize(pattern) > POSIXRegex.maxExpandedSize, "\(pattern)")
            #expect(throws: RegexError.self) { try POSIXRegex(pattern) }
        }
        let refused = try #require(throws: RegexError.self) { try POSIXRegex("a" + String(repeating: "*", count: 40)) }
        #expect(refused.reason == "too large once its repetitions are expanded (more than 20000 copies of its parts)")
    }

    @Test func ordinaryPatternsCompileAndMatch() throws {
        #expect(try POSIXRegex("^y(es)?$").matches("YES"))
        #expect(try POSIXRegex("[0-9]{1,3}\\.[0-9]{1,3}").matches("at 10.20"))
        #expect(try !POSIXRegex("^spam{2,4}$").matches("spammmmm"))
        #expect(try POSIXRegex("a{1,1000}").matches("aaa"))
    }
}
