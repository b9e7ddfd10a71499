import NIOCore
import PosternPolicy
import PosternSMTP
@testable import ReceiverCore
import Testing

/// The command table line by line: each script runs on a fresh session, and every line's
/// answer is checked (a reply as `code status text`, or the step it leads to).
@Suite struct SMTPSessionTests {
    static func describe(_ step: SMTPSession.Step) -> String {
        switch step {
        case .reply(let r): r.description
        case .quit(let r): "quit \(r)"
        case .startData: "start data"
        case .chunk(let size, let last): "chunk \(size)\(last ? " last" : "")"
        case .startTLS: "start TLS"
        }
    }

    static func run(_ script: [(String, String)], lmtp: Bool = false, tls: Bool = false, config: String = "") throws {
        var session = SMTPSession(lmtp: lmtp, hostname: "mx.test", config: try PosternConfig.parse(config, path: "t"))
        session.tlsAvailable = tls
        for (line, expected) in script {
            var buffer = ByteBuffer(string: line)
            var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
            let next = framer.next(from: &buffer)
            let framed = try #require(next)
            let got = describe(session.handle(framed: framed))
            #expect(got == expected, "\(line.debugDescription)")
        }
    }

    static let ehlo = "250 mx.test PIPELINING SIZE 10485760 CHUNKING ENHANCEDSTATUSCODES 8BITMIME DSN SMTPUTF8 XFORWARD ADDR HELO IDENT NAME PORT PROTO SOURCE"

    @Test(arguments: [
        ("order", [
            ("MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Error: send HELO/EHLO first"),
            ("RCPT TO:<b@example.org>\r\n", "503 5.5.1 Error: need MAIL command"),
            ("EHLO client.test\r\n", ehlo),
            ("DATA\r\n", "503 5.5.1 Error: need MAIL command"),
            ("MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok"),
            ("MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Error: nested MAIL command"),
            ("DATA\r\n", "554 5.5.1 Error: no valid recipients"),
            ("RCPT TO:<b@example.org>\r\n", "250 2.1.5 Ok"),
            ("STARTTLS\r\n", "502 5.5.1 Error: STARTTLS not configured"),
            ("XFORWARD ADDR=192.0.2.1\r\n", "503 5.5.1 Error: MAIL transaction in progress"),
            ("DATA\r\n", "start data"),
        ]),
        ("parameters", [
            ("EHLO c\r\n", ehlo),
            ("MAIL FROM:<a@example.com> SIZE=99999999999\r\n", "552 5.3.4 Message size exceeds fixed limit"),
            ("MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n", "501 5.5.4 Bad BODY value: 7BIT or 8BITMIME (BINARYMIME is not supported)"),
            ("MAIL FROM:<a@example.com> RET=ALL\r\n", "501 5.5.4 Bad RET value"),
            ("MAIL FROM:<a@example.com> SMTPUTF8=yes\r\n", "501 5.5.4 SMTPUTF8 takes no value"),
            ("MAIL FROM:<a@example.com> FROB=1\r\n", "555 5.5.4 Unsupported option: FROB"),
            ("MAIL FROM:<a@example.com> BODY=8BITMIME RET=HDRS ENVID=x AUTH=<>\r\n", "250 2.1.0 Ok"),
            ("RCPT TO:<ü@example.org>\r\n", "553 5.6.7 Must declare SMTPUTF8 to send UTF8 addresses"),
            ("RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS\r\n", "501 5.5.4 Bad NOTIFY value"),
            ("RCPT TO:<b@example.org> ORCPT=b@example.org\r\n", "501 5.5.4 Bad ORCPT value"),
            ("RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@example.org\r\n", "250 2.1.5 Ok"),
        ]),
        ("lines", [
            ("EHLO c\n", "500 5.5.2 Error: bare <LF> received; lines must end with <CR><LF>"),
            ("EH\rLO c\r\n", "500 5.5.2 Error: bad command line"),
            ("NOOP " + String(repeating: "x", count: 3000) + "\r\n", "500 5.5.2 Error: bad command line"),
            (String(repeating: "x", count: 9000) + "\r\n", "500 5.5.2 Error: line too long"),
            ("FOO\r\n", "500 5.5.2 Error: command not recognized"),
            ("LHLO c\r\n", "500 5.5.1 Error: command not recognized"),
            ("NOOP\r\n", "250 2.0.0 Ok"),
            ("VRFY root\r\n", "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"),
            ("HELP\r\n", "214 2.0.0 See RFC 5321"),
            ("QUIT\r\n", "quit 221 2.0.0 Bye"),
        ]),
        ("bdat", [
            ("BDAT 5\r\n", "chunk 5"),
            ("EHLO c\r\n", ehlo),
            ("MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok"),
            ("RCPT TO:<b@example.org>\r\n", "250 2.1.5 Ok"),
            ("BDAT 20\r\n", "chunk 20"),
            ("DATA\r\n", "503 5.5.1 Error: DATA after BDAT"),
            ("BDAT 0 LAST\r\n", "chunk 0 last"),
            ("BDAT x\r\n", "501 5.5.4 Syntax: BDAT chunk-size [LAST]"),
        ]),
        ("xforward", [
            ("XFORWARD ADDR=192.0.2.1\r\n", "503 5.5.1 Error: send EHLO first"),
            ("HELO c\r\n", "250 mx.test"),
            ("XFORWARD ADDR=192.0.2.1\r\n", "503 5.5.1 Error: send EHLO first"),
            ("EHLO c\r\n", ehlo),
            ("XFORWARD NAME=mx.example BOGUS=1\r\n", "501 5.5.4 Bad XFORWARD attribute name: BOGUS"),
            ("XFORWARD NAME=mx.example ADDR=192.0.2.1\r\n", "250 2.0.0 Ok"),
        ]),
    ] as [(String, [(String, String)])])
    func smtpScripts(_ name: String, _ script: [(String, String)]) throws {
        try Self.run(script)
    }

    @Test func lmtpWantsLHLO() throws {
        try Self.run([
            ("EHLO c\r\n", "500 5.5.1 Error: LMTP requires LHLO"),
            ("MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Error: send LHLO first"),
            ("LHLO c\r\n", Self.ehlo),
        ], lmtp: true)
    }

    /// RFC 5321 §4.5.3.1.10: past MaxRecipients the answer is 452 4.5.3.
    @Test func tooManyRecipients() throws {
        try Self.run([
            ("EHLO c\r\n", Self.ehlo),
            ("MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok"),
            ("RCPT TO:<b@example.org>\r\n", "250 2.1.5 Ok"),
            ("RCPT TO:<c@example.org>\r\n", "250 2.1.5 Ok"),
            ("RCPT TO:<d@example.org>\r\n", "452 4.5.3 Error: too many recipients"),
        ], config: "[Receiver]\nMaxRecipients = 2")
    }

    /// STARTTLS is offered until TLS is active, and never inside a transaction.
    @Test func startTLS() throws {
        try Self.run([
            ("EHLO c\r\n", "250 mx.test STARTTLS PIPELINING SIZE 10485760 CHUNKING ENHANCEDSTATUSCODES 8BITMIME DSN SMTPUTF8 XFORWARD ADDR HELO IDENT NAME PORT PROTO SOURCE"),
            ("MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Ok"),
            ("STARTTLS\r\n", "503 5.5.1 Error: MAIL transaction in progress"),
            ("RSET\r\n", "250 2.0.0 Ok"),
            ("STARTTLS\r\n", "start TLS"),
        ], tls: true)
    }
}
