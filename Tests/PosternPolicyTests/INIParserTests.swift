import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// The INI dialect itself: comments, quotes, lists, continuation, names.
@Suite struct INIParserTests {
    private func parse(_ text: String) -> INIParser {
        INIParser.parse(text, file: "t.conf")
    }

    private func value(_ text: String, _ section: String = "x", _ key: String) -> RawValue? {
        parse(text).sections[section]?.keys[key]?.values.first
    }

    @Test(arguments: [
        ("k = plain", "plain"),
        ("k = two words", "two words"),
        ("k = value ; trailing comment", "value"),
        ("k = value # trailing comment", "value"),
        ("k = a#b;c", "a#b;c"),
        ("k = \"a ; b # c\"", "a ; b # c"),
        ("k = \"a, b\"", "a, b"),
        ("k = \"say \\\"hi\\\" \\\\ \\d\"", "say \"hi\" \\ \\d"),
        ("k =", ""),
        ("k = \"\"", ""),
        ("k=tight", "tight"),
        ("k = \"quoted\" ; comment", "quoted"),
        ("k = tempfail, notify", "tempfail, notify"),
    ])
    func scalarValues(line: String, expected: String) {
        #expect(value("[x]\n" + line, "x", "k")?.text == expected)
    }

    @Test(arguments: [
        ("k = a, b,c", ["a", "b", "c"]),
        ("k = \"a, b\", c", ["a, b", "c"]),
        ("k = one", ["one"]),
        ("k =", []),
        ("k = \"\"", [""]),
    ])
    func listItems(line: String, expected: [String]) {
        #expect(value("[x]\n" + line, "x", "k")?.items.map(\.text) == expected)
    }

    @Test func commentsAndBlankLinesAreSkipped() {
        let parser = parse("; comment\n# comment\n\n[X]\n  ; indented comment\nk = 1\n")
        #expect(parser.errors.isEmpty)
        #expect(parser.sections["x"]?.order == ["k"])
    }

    @Test func namesAreCaseInsensitiveAndRepeatsAreKept() {
        let parser = parse("[ClamAV]\nSocket = a\n[clamav]\nSOCKET = b\n")
        let key = parser.sections["clamav"]?.keys["socket"]
        #expect(parser.sections["clamav"]?.name == "ClamAV")
        #expect(key?.values.map(\.text) == ["a", "b"])
        #expect(key?.values.map(\.line) == [2, 4])
    }

    @Test func sectionNamesAroundColonAreNormalised() {
        let parser = parse("[ Rule : Spam ]\nk = v\n[Milter:spamd]\n")
        #expect(parser.sections.keys.sorted() == ["milter:spamd", "rule:spam"])
        #expect(parser.sections["rule:spam"]?.name == "Rule:Spam")
    }

    @Test func crlfLineEndingsAndBOM() {
        let parser = parse("\u{FEFF}[X]\r\nk = v\r\nj = \"w\"\r\n")
        #expect(parser.errors.isEmpty)
        #expect(parser.sections["x"]?.keys["k"]?.values.first?.text == "v")
        #expect(parser.sections["x"]?.keys["j"]?.values.first?.text == "w")
    }

    @Test func positionsOfKeysAndValues() throws {
        let raw = try #require(value("[x]\n  Key  =   \"v\"", "x", "key"))
        #expect(raw.line == 2)
        #expect(raw.keyColumn == 3)
        #expect(raw.column == 13)        // inside the quote
    }

    @Test func rulesAreLinesWithContinuation() throws {
        let text = "[Rules]\nfrom:a \\\n   && to:b \\ ; comment\n # comment inside\n  cont X/Y = 1\ntrue stop\n"
        let rules = try #require(parse(text).sections["rules"]?.ruleLines)
        #expect(rules.map(\.text) == ["from:a && to:b cont X/Y = 1", "true stop"])
        #expect(rules.map(\.line) == [2, 6])
        let offset = Array(rules[0].text.utf8).firstIndex(of: UInt8(ascii: "t"))!   // "to:b"
        #expect(rules[0].position(of: offset) == (3, 7))
        #expect(rules[0].position(of: 15) == (5, 3))                                 // "cont"
    }

    @Test func blankLineEndsAContinuation() throws {
        let rules = try #require(parse("[Rules]\ntrue \\\n\nfalse stop\n").sections["rules"]?.ruleLines)
        #expect(rules.map(\.text) == ["true", "false stop"])
    }

    @Test func syntaxErrorsAreCollected() {
        let parser = parse("k = 1\n[X\n[Y]\nnovalue\nk = \"open\n[Z] junk\n")
        #expect(parser.errors.map(\.description) == [
            "t.conf:1:1: line outside any section",
            "t.conf:2:1: missing ']' in section header",
            "t.conf:4:8: expected '=' after key 'novalue'",
            "t.conf:5:5: unterminated quoted string",
            "t.conf:6:5: unexpected text after section header",
        ])
    }
}
