@testable import PosternSMTP
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct CommandTests {
    @Test(arguments: [
        ("EHLO mx.example", Command.ehlo("mx.example")),
        ("helo mx", .helo("mx")),
        ("LHLO lmtp.example", .lhlo("lmtp.example")),
        ("MAIL FROM:<>", .mail(from: "", MailParameters())),
        ("MAIL FROM: <a@b.c>", .mail(from: "a@b.c", MailParameters())),
        ("mail from:<a@b.c> BODY=8BITMIME SIZE=1000", .mail(from: "a@b.c", MailParameters([.init(keyword: "BODY", value: "8BITMIME"), .init(keyword: "SIZE", value: "1000")]))),
        ("MAIL FROM:<@relay:a@b.c>", .mail(from: "a@b.c", MailParameters())),
        ("RCPT TO:<@a.example,@[192.0.2.1]:\"x:y\"@b.c>", .rcpt(to: "\"x:y\"@b.c", MailParameters())),
        ("MAIL FROM:<\"a b\"@c.d>", .mail(from: "\"a b\"@c.d", MailParameters())),
        ("RCPT TO:<x@y.z> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y.z", .rcpt(to: "x@y.z", MailParameters([.init(keyword: "NOTIFY", value: "SUCCESS,FAILURE"), .init(keyword: "ORCPT", value: "rfc822;x@y.z")]))),
        ("RCPT TO:<Postmaster>", .rcpt(to: "Postmaster", MailParameters())),
        ("DATA", .data),
        ("BDAT 100 LAST", .bdat(size: 100, last: true)),
        ("XFORWARD NAME=mx ADDR=192.0.2.1", .xforward(["NAME": "mx", "ADDR": "192.0.2.1"])),
        ("MAIL FROM:<ü@example.com> SMTPUTF8", .mail(from: "ü@example.com", MailParameters([.init(keyword: "SMTPUTF8", value: nil)]))),
        // Found by the smtp-command fuzz target: the name ended in the tab before "x".
        ("EHLO mx.example\t x", .ehlo("mx.example")),
        ("LHLO lmtp.example\tjunk", .lhlo("lmtp.example")),
        // Found by the smtp-command fuzz target: a space and a combining mark are one Character.
        ("EHLO \u{61A}x.example", .ehlo("\u{61A}x.example")),
        // The path ends at octets too: a quote followed by a combining mark still opens the
        // quoted local part (as one Character it did not, and the '>' was then "inside" it).
        ("RCPT TO:<\"\u{301}a\"@example.org>", .rcpt(to: "\"\u{301}a\"@example.org", MailParameters())),
        ("rcpt to:<x@y.z>", .rcpt(to: "x@y.z", MailParameters())),
    ])
    func parses(_ line: String, _ expected: Command) throws {
        #expect(try Command.parse(Substring(line)) == expected)
    }

    @Test(arguments: [
        ("FOO", CommandError.Kind.unknownCommand),
        ("MAIL TO:<a@b>", .syntax),
        ("MAIL FROM:<a@b", .syntax),
        ("MAIL FROM:<a@b>x", .syntax),
        ("RCPT TO:<>", .badAddress),
        ("RCPT TO:<user>", .badAddress),
        ("MAIL FROM:<ü@example.com>", .utf8NotDeclared),
        ("MAIL FROM:<a@b> SIZE=", .syntax),
        ("MAIL FROM:<a@b> SIZE=1 SIZE=2", .syntax),
        ("DATA x", .syntax),
        ("EHLO", .syntax),
        ("BDAT x", .syntax),
        ("RCPT T0:<a@b.c>", .syntax),
        ("RCPT TO:<a@b.c>\u{301}", .syntax),
        // Found by the smtp-command fuzz target: the "route" ended at a colon inside the quoted
        // local part, leaving odoe"@example.org, which the spool could not read back.
        ("RCPT TO:<@relay.example,@ FROM< jnh\":odoe\"@example.org>", .badAddress),
        ("RCPT TO:<@relay.example,\"x:y\"@example.org>", .badAddress),
    ])
    func refuses(_ line: String, _ kind: CommandError.Kind) {
        #expect(throws: CommandError.self) { try Command.parse(Substring(line)) }
        do { _ = try Command.parse(Substring(line)) } catch { #expect(error.kind == kind) }
    }
}

@Suite struct ReplyTests {
    @Test func writesMultiline() {
        let r = Reply(250, nil, lines: ["host", "PIPELINING", "SIZE 10"])
        #expect(String(buffer: r.bytes) == "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
    }

    @Test func writesEnhancedStatusOnEveryLine() {
        let r = Reply(550, EnhancedStatus(5, 7, 1), lines: ["a", "b"])
        #expect(String(buffer: r.bytes) == "550-5.7.1 a\r\n550 5.7.1 b\r\n")
    }

    @Test func cannotBeSplitByText() {
        let r = Reply(250, EnhancedStatus(2, 0, 0), "Ok\r\n250 injected")
        #expect(String(buffer: r.bytes) == "250 2.0.0 Ok  250 injected\r\n")
    }

    @Test func parsesMultiline() throws {
        var p = ReplyParser()
        #expect(try p.feed("250-2.1.0 first") == nil)
        let r = try p.feed("250 2.1.0 second")
        #expect(r == Reply(250, EnhancedStatus(2, 1, 0), lines: ["first", "second"]))
    }

    @Test(arguments: ["abc", "25", "250x", "700 bad"])
    func rejectsGarbage(_ line: String) {
        var p = ReplyParser()
        #expect(throws: ReplyParseError.self) { try p.feed(Substring(line)) }
    }
}

@Suite struct EnhancedStatusInTextTests {
    @Test(arguments: [
        ("lost connection with next hop", nil),
        ("inet:25@mx said: 451 4.3.0 Error: queue file write error", "4.3.0"),
        ("421 4.7.0 too many", "4.7.0"),
        ("452 too many recipients", nil),
        ("connect to x: 451 4.x.0", nil),
    ] as [(String, String?)])
    func statusQuotedInText(text: String, expected: String?) {
        #expect(EnhancedStatus.first(in: text) == expected)
    }
}
