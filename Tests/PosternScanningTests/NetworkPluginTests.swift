import Dispatch
import Glibc
import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// clamd, spamd and rspamd clients without the daemons: their reply parsers on fixtures taken
/// from the real daemons (clamd 1.4, spamd 4.0, rspamd 3.4 on Debian 12), and the socket's
/// deadlines and fail-over against in-test listeners. The real daemons are exercised by the
/// end-to-end tests (`Tests/e2e/scanners.py`).
@Suite struct ClamdReplyTests {
    @Test(arguments: [
        ("stream: OK\0", Finding(plugin: "clamav", verdict: "clean", detail: "clean")),
        ("stream: Eicar-Test-Postern.UNOFFICIAL FOUND\0",
         Finding(plugin: "clamav", verdict: "infected", names: ["Eicar-Test-Postern.UNOFFICIAL"], detail: "infected: Eicar-Test-Postern.UNOFFICIAL")),
        // ExtendedDetectionInfo, Debian's default: the hash and size are dropped.
        ("stream: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0",
         Finding(plugin: "clamav", verdict: "infected", names: ["Eicar-Test-Signature"], detail: "infected: Eicar-Test-Signature")),
        ("stream: Win.Test.EICAR_HDB-1 FOUND",
         Finding(plugin: "clamav", verdict: "infected", names: ["Win.Test.EICAR_HDB-1"], detail: "infected: Win.Test.EICAR_HDB-1")),
        // The replies to zFILDES name the descriptor clamd got.
        ("fd[11]: OK\0", Finding(plugin: "clamav", verdict: "clean", detail: "clean")),
        ("fd[7]: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0",
         Finding(plugin: "clamav", verdict: "infected", names: ["Eicar-Test-Signature"], detail: "infected: Eicar-Test-Signature")),
    ])
    func verdicts(reply: String, expected: Finding) throws {
        #expect(try ClamAVPlugin.parseReply(Array(reply.utf8)) == expected)
    }

    @Test(arguments: [
        ("INSTREAM size limit exceeded. ERROR\0", "INSTREAM size limit exceeded. ERROR"),
        ("", "closed the connection without a reply"),
        ("UNKNOWN COMMAND\0", "unexpected reply 'UNKNOWN COMMAND'"),
        ("stream: FOUND\0", "unexpected reply 'stream: FOUND'"),
        ("fd[]: OK\0", "unexpected reply 'fd[]: OK'"),
        ("fd[1x]: OK\0", "unexpected reply 'fd[1x]: OK'"),
        ("fd[3]:OK\0", "unexpected reply 'fd[3]:OK'"),
        ("fd[3]: Can't open file or directory ERROR\0", "fd[3]: Can't open file or directory ERROR"),
        ("stream: OK\0\0", "unexpected reply 'stream: OK?'"),
        ("stream: OK\r\nX", "unexpected reply 'stream: OK??X'"),
    ])
    func errors(reply: String, message: String) {
        #expect(throws: PluginError(message)) { try ClamAVPlugin.parseReply(Array(reply.utf8)) }
    }

    @Test func chunks() {
        let command = Array("zINSTREAM\0".utf8)
        let message = (0..<150_000).map { UInt8(truncatingIfNeeded: $0) }
        let writes = ClamAVPlugin.requestWrites(message)
        #expect(writes.map(\.count) == [10 + 4 + 65536, 4 + 65536, 4 + 18928 + 4])
        #expect(Array(writes[0].prefix(14)) == command + [0, 1, 0, 0])
        #expect(Array(writes[2].prefix(4)) == [0, 0, 0x49, 0xf0])
        #expect(Array(writes[2].suffix(4)) == [0, 0, 0, 0])
        #expect(writes[0].dropFirst(14) + writes[1].dropFirst(4) + writes[2].dropFirst(4).dropLast(4) == message[...])
        // A message of one chunk is a single write; so is an empty one.
        let small = [UInt8](repeating: 0x41, count: 10_000)
        #expect(ClamAVPlugin.requestWrites(small) == [command + [0, 0, 0x27, 0x10] + small + [0, 0, 0, 0]])
        #expect(ClamAVPlugin.requestWrites([]) == [command + [0, 0, 0, 0]])
    }
}

@Suite struct SpamdReplyTests {
    static let gtube = "SPAMD/1.1 0 EX_OK\r\nContent-length: 55\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,MSGID_SHORT,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO"
    static let plugin = SpamAssassinPlugin(addresses: [], maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil, user: nil)

    @Test(arguments: [
        (gtube, 1000.0, 5.0, ["GTUBE", "MSGID_SHORT", "NO_RECEIVED", "NO_RELAYS", "TVD_SPACE_RATIO"]),
        ("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\nContent-length: 0\r\n\r\n", -0.1, 5.0, []),
        ("SPAMD/1.5 0 EX_OK\r\nspam: yes ; 7 / 6.5\r\n\r\nA , B,\r\n", 7, 6.5, ["A", "B"]),
        ("SPAMD/1.1 0 EX_OK\r\nContent-length: 1\r\nSpam: True ; 5.0 / 5.0\r\n\r\nAB", 5, 5, ["A"]),
    ])
    func replies(reply: String, score: Double, required: Double, symbols: [String]) throws {
        let parsed = try SpamAssassinPlugin.parseReply(Array(reply.utf8))
        #expect(parsed == SpamAssassinPlugin.Reply(score: score, required: required, symbols: symbols))
    }

    @Test(arguments: [
        ("SPAMD/1.0 76 Bad header line: (Content-length mismatch: 5 vs. 2)\r\n\r\n", "error 76 Bad header line: (Content-length mismatch: 5 vs. 2)"),
        ("SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\n\r\nGTUBE", "reply without a Spam: field"),
        ("HTTP/1.1 200 OK\r\n\r\n", "unexpected reply 'HTTP/1.1 200 OK'"),
        ("SPAMD/1.1 0 EX_OK\r\nSpam: True ; much / 5.0\r\n\r\n", "unexpected reply 'Spam: True ; much / 5.0'"),
        ("SPAMD/1.1 0 EX_OK\r\nSpam: True ; nan / 5.0\r\n\r\n", "unexpected reply 'Spam: True ; nan / 5.0'"),
        ("SPAMD/1.1 0 EX_OK\r\nContent-length: 9\r\nSpam: True ; 1 / 5\r\n\r\nGTUBE", "reply shorter than its Content-length"),
        ("", "closed the connection without a reply"),
    ])
    func errors(reply: String, message: String) {
        #expect(throws: PluginError(message)) { try SpamAssassinPlugin.parseReply(Array(reply.utf8)) }
    }

    @Test func gtubeHeaders() throws {
        let finding = Self.plugin.finding(for: try SpamAssassinPlugin.parseReply(Array(Self.gtube.utf8)))
        #expect(finding == Finding(plugin: "spamassassin", verdict: "spam", score: 1000, headers: [
            "X-Spam-Status: Yes, score=1000.0 required=5.0 tests=GTUBE,MSGID_SHORT,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO",
            "X-Spam-Score: 1000.0", "X-Spam-Flag: YES",
        ], detail: "spam: score 1000.0, required 5.0"))
    }

    /// (score, spamd's required, SpamThreshold, UnconditionalSpamThreshold) → verdict.
    @Test(arguments: [
        (4.9, 5.0, nil, nil, "clean"), (5.0, 5.0, nil, nil, "spam"), (5.0, 5.0, 6.0, nil, "clean"),
        (3.0, 5.0, 2.5, nil, "spam"), (12.0, 5.0, nil, 12.0, "unconditional-spam"), (11.9, 5.0, nil, 12.0, "spam"),
        (-0.1, 5.0, nil, 10.0, "clean"), (20.0, 5.0, 30.0, 15.0, "unconditional-spam"),
    ] as [(Double, Double, Double?, Double?, String)])
    func thresholds(score: Double, required: Double, spam: Double?, unconditional: Double?, verdict: String) {
        let plugin = SpamAssassinPlugin(addresses: [], maxSize: 1, spamThreshold: spam, unconditionalThreshold: unconditional, user: nil)
        let finding = plugin.finding(for: .init(score: score, required: required, symbols: []))
        #expect(finding.verdict.rawValue == verdict)
        #expect(finding.score == score)
        #expect(finding.headers.contains("X-Spam-Flag: YES") == (verdict != "clean"))
        #expect(finding.headers[0].hasPrefix(verdict == "clean" ? "X-Spam-Status: No, " : "X-Spam-Status: Yes, "))
        #expect(finding.names.isEmpty)
    }

    @Test func cleanHeadersAndRounding() {
        let finding = Self.plugin.finding(for: .init(score: -0.04, required: 5, symbols: []))
        #expect(finding.headers == ["X-Spam-Status: No, score=0.0 required=5.0 tests=none", "X-Spam-Score: 0.0"])
    }

    @Test func longAndHostileTestLists() {
        let many = (0..<300).map { "RULE_NUMBER_\($0)" }
        let hostile = ["EVIL\r\nX-Injected: yes", "NUL\0", "A,B"] + many
        let finding = Self.plugin.finding(for: .init(score: 9, required: 5, symbols: hostile))
        let status = finding.headers[0]
        #expect(status.utf8.count <= 998)
        #expect(status.hasSuffix(",..."))
        #expect(status.contains("tests=EVIL__X-Injected:_yes,NUL_,A_B,RULE_NUMBER_0,"))
        #expect(!finding.headers.joined().unicodeScalars.contains { $0.value < 0x20 || $0.value > 0x7e })
    }

    @Test func request() {
        #expect(SpamAssassinPlugin.writeRequest(contentLength: 42, user: nil) == Array("SYMBOLS SPAMC/1.5\r\nContent-length: 42\r\n\r\n".utf8))
        #expect(SpamAssassinPlugin.writeRequest(contentLength: 0, user: "bob\r\nX: y")
                == Array("SYMBOLS SPAMC/1.5\r\nContent-length: 0\r\nUser: bob__X: y\r\n\r\n".utf8))
    }
}

@Suite struct RspamdReplyTests {
    static let gtube = #"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"x@example.com","time_real":0.043322}"#
    static let clean = #"{"is_skipped":false,"score":5.800000,"required_score":15.0,"action":"greylist","symbols":{"RDNS_NONE":{"score":1.0},"MIME_GOOD":{"score":-0.100000,"options":["text/plain"]},"AUTH_NA":{"score":1.0}},"messages":{},"milter":{"remove_headers":{"X-Spam":0}}}"#

    typealias Response = RspamdPlugin.HTTPResponse

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", Response(status: 200, reason: "OK", body: Array("hello".utf8))),
        ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhello", Response(status: 200, reason: "OK", body: Array("he".utf8))),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: 1\r\n\r\n",
         Response(status: 200, reason: "OK", body: Array("hello!".utf8))),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 invalid command\r\nContent-Length: 0\r\n\r\n", Response(status: 500, reason: "invalid command", body: [])),
        ("HTTP/1.0 204 \r\n\r\n", Response(status: 204, reason: "", body: [])),
    ])
    func http(reply: String, expected: Response) throws {
        #expect(try Response.parse(Array(reply.utf8), atEOF: false) == expected)
        #expect(try Response.parse(Array(reply.utf8), atEOF: true) == expected)
    }

    @Test func bodyToEOF() throws {
        let reply = Array("HTTP/1.1 200 OK\r\n\r\n{}".utf8)
        #expect(try Response.parse(reply, atEOF: false) == nil)
        #expect(try Response.parse(reply, atEOF: true) == Response(status: 200, reason: "OK", body: Array("{}".utf8)))
    }

    /// Incomplete replies: nil while reading, the error at EOF.
    @Test(arguments: [
        ("", "closed the connection without a reply"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "truncated reply header"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell", "reply shorter than its Content-Length"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "truncated chunked reply"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "truncated chunked reply"),
    ])
    func incomplete(reply: String, message: String) throws {
        #expect(try Response.parse(Array(reply.utf8), atEOF: false) == nil)
        #expect(throws: PluginError(message)) { try Response.parse(Array(reply.utf8), atEOF: true) }
    }

    @Test(arguments: [
        ("SPAMD/1.1 0 EX_OK\r\n\r\n", "unexpected reply 'SPAMD/1.1 0 EX_OK'"),
        ("HTTP/1.1 2000 OK\r\n\r\n", "unexpected reply 'HTTP/1.1 2000 OK'"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "unexpected reply 'Content-Length: -1'"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unexpected reply 'Transfer-Encoding: gzip'"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size in reply"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "bad chunk in reply"),
    ])
    func httpErrors(reply: String, message: String) {
        #expect(throws: PluginError(message)) { try Response.parse(Array(reply.utf8), atEOF: true) }
    }

    @Test func json() throws {
        #expect(try RspamdPlugin.parseReply(Array(Self.gtube.utf8)) == .init(score: 15, requiredScore: 15, action: "reject", symbols: ["GTUBE"]))
        #expect(try RspamdPlugin.parseReply(Array(Self.clean.utf8))
                == .init(score: 5.8, requiredScore: 15, action: "greylist", symbols: ["AUTH_NA", "MIME_GOOD", "RDNS_NONE"]))
        #expect(try RspamdPlugin.parseReply(Array(#"{"score":0,"required_score":15}"#.utf8)) == .init(score: 0, requiredScore: 15, action: "", symbols: []))
    }

    @Test(arguments: [#"{"error":"invalid command"}"#, "not json", #"{"score":"high","required_score":15}"#, ""])
    func badJSON(body: String) {
        #expect { try RspamdPlugin.parseReply(Array(body.utf8)) } throws: { error in
            (error as? PluginError)?.message.hasPrefix("reply is not rspamd's JSON: unexpected reply '") == true
        }
    }

    @Test func findings() throws {
        let plain = RspamdPlugin(addresses: [], maxSize: 1, spamThreshold: nil, unconditionalThreshold: nil)
        let gtube = try RspamdPlugin.parseReply(Array(Self.gtube.utf8))
        #expect(plain.finding(for: gtube) == Finding(plugin: "rspamd", verdict: "spam", score: 15, headers: [
            "X-Spam-Status: Yes, score=15.00 required=15.00 tests=GTUBE", "X-Spam-Score: 15.00", "X-Spam-Flag: YES",
        ], detail: "spam: score 15.00, required 15.00 (rspamd action: reject)"))
        let strict = RspamdPlugin(addresses: [], maxSize: 1, spamThreshold: 6, unconditionalThreshold: 15)
        #expect(strict.finding(for: gtube).verdict == "unconditional-spam")
        let clean = try RspamdPlugin.parseReply(Array(Self.clean.utf8))
        #expect(strict.finding(for: clean).headers == ["X-Spam-Status: No, score=5.80 required=6.00 tests=AUTH_NA,MIME_GOOD,RDNS_NONE", "X-Spam-Score: 5.80"])
        #expect(strict.finding(for: clean).verdict == "clean")
        #expect(RspamdPlugin(addresses: [], maxSize: 1, spamThreshold: 5, unconditionalThreshold: nil).finding(for: clean).verdict == "spam")
    }

    @Test func request() {
        let request = ScanRequest(queueID: "4Qx1", message: Array("Subject: x\r\n\r\nhi\r\n".utf8), mailFrom: "",
                                  recipients: ["a@example.net", "b@example.net"], clientIP: "192.0.2.1", helo: "evil\r\nX-Bad: 1")
        #expect(String(decoding: RspamdPlugin.writeRequest(request, host: "127.0.0.1:11333"), as: UTF8.self) == """
            POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:11333\r\nQueue-Id: 4Qx1\r\nFrom: <>\r\nRcpt: a@example.net\r\n\
            Rcpt: b@example.net\r\nIP: 192.0.2.1\r\nHelo: evil__X-Bad: 1\r\nContent-Length: 18\r\nConnection: close\r\n\r\n
            """)
        let bare = ScanRequest(queueID: "q", message: [], mailFrom: "s@example.com")
        #expect(String(decoding: RspamdPlugin.writeRequest(bare, host: "localhost"), as: UTF8.self)
                == "POST /checkv2 HTTP/1.1\r\nHost: localhost\r\nQueue-Id: q\r\nFrom: s@example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }
}

/// Deadlines, fail-over and whole exchanges, against in-test listeners (``FakeScanner``): a
/// test double is enough here, since what is tested is our socket, not the daemon.
@Suite struct ScannerSocketTests {
    static let message = Array("From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n".utf8)
    static let request = ScanRequest(queueID: "Q1", message: message, mailFrom: "a@example.com", recipients: ["b@example.net"])

    static func plugin(_ name: String, _ addresses: [ScannerAddress]) -> any ScanPlugin {
        switch name {
        case "clamav": ClamAVPlugin(addresses: addresses, maxSize: 1 << 20)
        case "spamassassin": SpamAssassinPlugin(addresses: addresses, maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil, user: nil)
        default: RspamdPlugin(addresses: addresses, maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil)
        }
    }

    static let services = ["clamav": "clamd", "spamassassin": "spamd", "rspamd": "rspamd"]

    /// A scanner that accepts and never answers costs the deadline, not more.
    @Test(arguments: ["clamav", "spamassassin", "rspamd"], [false, true])
    func silentScannerTimesOut(plugin name: String, unix: Bool) throws {
        let fake = try FakeScanner(unix: unix)
        let started = ContinuousClock.now
        #expect(throws: PluginError("\(Self.services[name]!) \(fake.address): timed out waiting for the reply")) {
            try Self.plugin(name, [fake.address]).scan(Self.request, deadline: .now + .milliseconds(300))
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(2))
    }

    /// A spool file that fails to read mid-stream (cut short here): the scanner waits for the
    /// rest of the stream and would never answer, so the plug-in gives up at once with the
    /// read's error, not at the deadline (clamd) or after a second's wait (rspamd).
    @Test(arguments: ["clamav", "rspamd"])
    func aMessageThatCannotBeReadIsNotWaitedOn(plugin name: String) throws {
        let spool = try TempSpool()
        let size = 200_001
        let id = QueueID.make()
        let w = try SpoolWriter(layout: spool.layout, id: id)
        var body = ByteBuffer(bytes: [UInt8](repeating: UInt8(ascii: "x"), count: size))
        try w.append(&body)
        try w.finish(envelope: Envelope(id: id, arrival: 1, mailFrom: "a@example.org", recipients: [Recipient(address: "b@example.com")], size: size))
        try w.commit(to: .scan)
        let file = try SpoolFile.read(path: spool.layout.path(id, .scan))
        let message = try StoredMessage(file: file)
        #expect(truncate(file.path, off_t(file.messageOffset + 100_000)) == 0)
        let fake = try FakeScanner()
        fake.serve(expect: 1 << 30, reply: [])   // reads all it gets, answers nothing
        let request = ScanRequest(queueID: id, message: message, mailFrom: "a@example.org", recipients: ["b@example.com"])
        let started = ContinuousClock.now
        #expect {
            try Self.plugin(name, [fake.address]).scan(request, deadline: .now + .seconds(5))
        } throws: { error in
            (error as? PluginError)?.message.contains("cannot read the message: pread \(file.path): Input/output error") == true
        }
        #expect(ContinuousClock.now - started < .milliseconds(800))
        #expect(message.readFailure?.errno == EIO)
    }

    @Test func refusedFailsOverToTheNextAddress() throws {
        let live = try FakeScanner()
        let dead = ScannerAddress(location: .inet(host: "127.0.0.1", port: FakeScanner.closedPort()), weight: 1000)
        var first = FirstChoice()   // the dead address is drawn first
        let socket = try ScannerSocket.connect(to: [dead, live.address], service: "clamd", deadline: .now + .seconds(2), using: &first)
        #expect(socket.address == live.address)
        #expect(socket.peer == "clamd \(live.address)")
    }

    @Test func everyAddressFails() {
        let a = ScannerAddress(location: .inet(host: "127.0.0.1", port: FakeScanner.closedPort()))
        let b = ScannerAddress(location: .unix(path: "/nonexistent/clamd.ctl"))
        var first = FirstChoice()
        #expect(throws: PluginError("clamd \(a): connection refused; clamd local:/nonexistent/clamd.ctl: no such file or directory")) {
            try ScannerSocket.connect(to: [a, b], service: "clamd", deadline: .now + .seconds(2), using: &first)
        }
        #expect(throws: PluginError("clamd: no address configured")) {
            try ScannerSocket.connect(to: [], service: "clamd", deadline: .now + .seconds(2))
        }
        let unresolvable = ScannerAddress(location: .inet(host: "no-such-host.invalid", port: 3310))
        #expect { try ScannerSocket.connect(to: [unresolvable], service: "clamd", deadline: .now + .seconds(2)) } throws: { error in
            (error as? PluginError)?.message.hasPrefix("clamd inet:3310@no-such-host.invalid: ") == true
        }
    }

    @Test func addresses() {
        #expect(ScannerAddress(location: .inet(host: "::1", port: 783)).description == "inet:783@[::1]")
        #expect(ScannerAddress(location: .inet(host: "10.0.0.1", port: 3310)).description == "inet:3310@10.0.0.1")
        #expect(ScannerAddress(location: .unix(path: "/run/clamd.ctl")).description == "local:/run/clamd.ctl")
    }

    @Test func weightedOrder() {
        let a = ScannerAddress(location: .unix(path: "/a"), weight: 3)
        let b = ScannerAddress(location: .unix(path: "/b"), weight: 1)
        let backup = ScannerAddress(location: .unix(path: "/c"), weight: 0)
        var generator = SplitMix64(seed: 42)
        var firstIsA = 0
        for _ in 0..<4000 {
            let order = ScannerAddress.failoverOrder([a, b, backup], using: &generator)
            #expect(Set(order.prefix(2)) == [a, b])
            #expect(order.last == backup)
            if order[0] == a { firstIsA += 1 }
        }
        #expect((2800...3200).contains(firstIsA))   // 3 in 4
    }

    /// With one address to choose from (most set-ups) nothing is drawn: every scan connects, and
    /// a draw from the system's generator is a getrandom(2) each time.
    @Test func oneAddressTakesNoDraw() {
        let a = ScannerAddress(location: .unix(path: "/a"))
        let backup = ScannerAddress(location: .unix(path: "/c"), weight: 0)
        var generator = CountingGenerator()
        #expect(ScannerAddress.failoverOrder([a], using: &generator) == [a])
        #expect(ScannerAddress.failoverOrder([backup, a], using: &generator) == [a, backup])
        #expect(ScannerAddress.failoverOrder([], using: &generator) == [])
        #expect(generator.draws == 0)
    }

    @Test func clamdExchange() throws {
        let fake = try FakeScanner()
        let writes = ClamAVPlugin.requestWrites(Self.message)
        fake.serve(expect: writes.joined().count, reply: Array("stream: Eicar-Test-Signature FOUND\0".utf8))
        let finding = try ClamAVPlugin(addresses: [fake.address], maxSize: 1 << 20).scan(Self.request, deadline: .now + .seconds(5))
        #expect(finding.names == ["Eicar-Test-Signature"])
        #expect(fake.wait() == Array("zINSTREAM\0".utf8) + [0, 0, 0, UInt8(Self.message.count)] + Self.message + [0, 0, 0, 0])
    }

    /// To a clamd on a unix socket the message goes as a file: the descriptor of an in-memory
    /// file holding exactly the message.
    @Test func clamdOnAUnixSocketGetsTheMessageAsAFile() throws {
        let fake = try FakeScanner(unix: true)
        fake.serveDescriptor(reply: Array("fd[9]: Eicar-Test-Signature FOUND\0".utf8))
        let finding = try ClamAVPlugin(addresses: [fake.address], maxSize: 1 << 20).scan(Self.request, deadline: .now + .seconds(5))
        #expect(finding.names == ["Eicar-Test-Signature"])
        #expect(fake.wait() == Self.message)
    }

    /// A clamd that refuses the descriptor (AppArmor's profile for clamd refuses files it has
    /// no rule for) gets the same message again as a stream, and every later one.
    @Test func clamdThatRefusesTheDescriptorGetsStreams() throws {
        let fake = try FakeScanner(unix: true)
        fake.serve(expect: 9, reply: Array("No file descriptor received. ERROR\0".utf8))
        let plugin = ClamAVPlugin(addresses: [fake.address], maxSize: 1 << 20)
        let stream = Array("zINSTREAM\0".utf8) + [0, 0, 0, UInt8(Self.message.count)] + Self.message + [0, 0, 0, 0]
        DispatchQueue.global().async {
            #expect(fake.wait() == Array("zFILDES\0".utf8) + [0])
            fake.reset()
            fake.serve(expect: stream.count, reply: Array("stream: OK\0".utf8))
        }
        #expect(try plugin.scan(Self.request, deadline: .now + .seconds(5)).verdict == .clean)
        #expect(fake.wait() == stream)
        fake.reset()
        fake.serve(expect: stream.count, reply: Array("stream: OK\0".utf8))
        #expect(try plugin.scan(Self.request, deadline: .now + .seconds(5)).verdict == .clean)
        #expect(fake.wait() == stream)
    }

    /// A clamd that goes away mid-request (killed, restarting) has refused nothing: the scan
    /// fails, and the next message goes as a file again.
    @Test func aClamdGoneMidRequestIsNotARefusal() throws {
        let fake = try FakeScanner(unix: true)
        fake.serve(expect: 9, reply: [])   // reads zFILDES and its octet, closes without a word
        let plugin = ClamAVPlugin(addresses: [fake.address], maxSize: 1 << 20)
        #expect(throws: PluginError("clamd \(fake.address): closed the connection without a reply")) {
            try plugin.scan(Self.request, deadline: .now + .seconds(5))
        }
        _ = fake.wait()
        fake.reset()
        fake.serveDescriptor(reply: Array("fd[5]: OK\0".utf8))
        #expect(try plugin.scan(Self.request, deadline: .now + .seconds(5)).verdict == .clean)
        #expect(fake.wait() == Self.message)
    }

    /// clamd's answer to a stream over StreamMaxLength arrives while we are still sending.
    @Test func clamdRefusesEarly() throws {
        let fake = try FakeScanner()
        fake.serve(expect: 100_000, reply: Array("INSTREAM size limit exceeded. ERROR\0".utf8))
        let big = ScanRequest(queueID: "Q2", message: [UInt8](repeating: 0x41, count: 8 << 20))
        #expect(throws: PluginError("clamd \(fake.address): INSTREAM size limit exceeded. ERROR")) {
            try ClamAVPlugin(addresses: [fake.address], maxSize: 16 << 20).scan(big, deadline: .now + .seconds(5))
        }
    }

    @Test func spamdExchange() throws {
        let fake = try FakeScanner()
        let head = SpamAssassinPlugin.writeRequest(contentLength: Self.message.count, user: "filter")
        fake.serve(expect: head.count + Self.message.count, reply: Array(SpamdReplyTests.gtube.utf8))
        let plugin = SpamAssassinPlugin(addresses: [fake.address], maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil, user: "filter")
        let finding = try plugin.scan(Self.request, deadline: .now + .seconds(5))
        #expect(finding.verdict == "spam" && finding.score == 1000)
        #expect(fake.wait() == head + Self.message)
    }

    /// A complete chunked reply ends the read although rspamd keeps the connection open.
    @Test func rspamdExchange() throws {
        let fake = try FakeScanner()
        let head = RspamdPlugin.writeRequest(Self.request, host: "127.0.0.1:\(fake.port)")
        let json = Array(RspamdReplyTests.gtube.utf8)
        let reply = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(String(json.count, radix: 16))\r\n".utf8) + json + Array("\r\n0\r\n\r\n".utf8)
        fake.serve(expect: head.count + Self.message.count, reply: reply, keepOpen: true)
        let started = ContinuousClock.now
        let finding = try RspamdPlugin(addresses: [fake.address], maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil)
            .scan(Self.request, deadline: .now + .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(finding.verdict == "spam")
        #expect(fake.wait() == head + Self.message)
    }

    @Test func rspamdHTTPError() throws {
        let fake = try FakeScanner()
        let body = #"{"error":"invalid command","error_domain":"protocol-error"}"#
        // The whole request is read first: a server that closes with the request still coming
        // resets the connection, and the reply can be lost to the client's failed write.
        let head = RspamdPlugin.writeRequest(Self.request, host: "127.0.0.1:\(fake.port)")
        fake.serve(expect: head.count + Self.message.count, reply: Array("HTTP/1.1 500 invalid command\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        #expect(throws: PluginError("rspamd \(fake.address): HTTP 500 invalid command")) {
            try RspamdPlugin(addresses: [fake.address], maxSize: 1 << 20, spamThreshold: nil, unconditionalThreshold: nil)
                .scan(Self.request, deadline: .now + .seconds(5))
        }
    }
}

extension ScannerSocketTests {
    /// An rspamd that refuses a message over its `max_message` as soon as it has read the
    /// request head, and closes: the rest of the message meets a reset, and the reply that
    /// says why is still read. (A stand-in: a real rspamd's limit would need a multi-megabyte
    /// message and its configuration; the socket behaviour is the kernel's either way.)
    @Test func rspamdRefusalBeforeTheWholeMessageIsRead() throws {
        let fake = try FakeScanner()
        let big = ScanRequest(queueID: "Q1", message: Self.message + Array(repeating: UInt8(ascii: "x"), count: 8 << 20),
                              mailFrom: "a@example.com", recipients: ["b@example.net"])
        let head = RspamdPlugin.writeRequest(big, host: "127.0.0.1:\(fake.port)")
        let body = #"{"error":"message too large"}"#
        fake.serve(expect: head.count, reply: Array("HTTP/1.1 413 Payload Too Large\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8))
        #expect(throws: PluginError("rspamd \(fake.address): HTTP 413 message too large")) {
            try RspamdPlugin(addresses: [fake.address], maxSize: 16 << 20, spamThreshold: nil, unconditionalThreshold: nil)
                .scan(big, deadline: .now + .seconds(10))
        }
        _ = fake.wait()
    }
}

/// Makes every `Int.random(in: 0..<n)` draw 0 (the stdlib's multiply-high reduction gives 0
/// for 1; 0 itself is rejected for most `n` and would loop), so `failoverOrder` keeps list order.
struct FirstChoice: RandomNumberGenerator {
    mutating func next() -> UInt64 { 1 }
}

/// Counts what is drawn from it.
struct CountingGenerator: RandomNumberGenerator {
    var draws = 0
    mutating func next() -> UInt64 {
        draws += 1
        return 1
    }
}


/// A scanner daemon's stand-in: a listener on 127.0.0.1 or a unix socket under /tmp. Without
/// ``serve(expect:reply:keepOpen:)`` it never accepts; the kernel completes the handshake
/// anyway, so a client waits for a reply that never comes.
///
/// `@unchecked Sendable`: `received` is written by the one serving thread before `done` is
/// signalled and read only after ``wait()``.
final class FakeScanner: @unchecked Sendable {
    let listener: Int32
    let address: ScannerAddress
    let port: Int
    private let path: String?
    private var received: [UInt8] = []
    private let done = DispatchSemaphore(value: 0)

    init(unix: Bool = false) throws {
        if unix {
            let path = "/tmp/postern-fake-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &sun.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let rc = withUnsafePointer(to: &sun) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard rc == 0 else { throw FakeScannerError(call: "bind") }
            (listener, port, self.path) = (fd, 0, path)
            address = ScannerAddress(location: .unix(path: path))
        } else {
            (listener, port) = try Self.bound()
            path = nil
            address = ScannerAddress(location: .inet(host: "127.0.0.1", port: port))
        }
        guard listen(listener, 8) == 0 else { throw FakeScannerError(call: "listen") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)   // accept and recv give up: no thread hangs for ever
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(listener)
        if let path { unlink(path) }
    }

    /// A port nothing listens on: bound a moment ago, then closed.
    static func closedPort() -> Int {
        guard let (fd, port) = try? bound() else { return 9 }
        close(fd)
        return port
    }

    private static func bound() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
        }
        guard rc == 0 else { throw FakeScannerError(call: "bind") }
        return (fd, Int(UInt16(bigEndian: sin.sin_port)))
    }

    /// Accepts one connection on another thread, reads `expect` bytes, answers `reply`, and
    /// closes, or with `keepOpen` waits for the client to close first.
    func serve(expect: Int, reply: [UInt8], keepOpen: Bool = false) {
        DispatchQueue.global().async { [self] in
            defer { done.signal() }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while received.count < expect {
                let n = recv(fd, &buffer, min(buffer.count, expect - received.count), 0)
                guard n > 0 else { return }
                received += buffer[..<n]
            }
            _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            while keepOpen && recv(fd, &buffer, buffer.count, 0) > 0 {}
        }
    }

    /// Like ``serve(expect:reply:keepOpen:)`` for a `zFILDES` request: reads the command and
    /// the descriptor passed with one octet, and keeps what the descriptor's file holds (from
    /// its start) as what was received.
    func serveDescriptor(reply: [UInt8]) {
        DispatchQueue.global().async { [self] in
            defer { done.signal() }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var command = [UInt8](repeating: 0, count: 8)
            guard recv(fd, &command, 8, Int32(MSG_WAITALL)) == 8, command == Array("zFILDES\0".utf8) else { return }
            guard let passed = Self.receiveDescriptor(fd) else { return }
            defer { close(passed) }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var offset: off_t = 0
            while true {
                let n = pread(passed, &buffer, buffer.count, offset)
                guard n > 0 else { break }
                received += buffer[..<n]
                offset += off_t(n)
            }
            _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// The descriptor that came with one octet (SCM_RIGHTS), as clamd receives it.
    private static func receiveDescriptor(_ fd: Int32) -> Int32? {
        var byte: UInt8 = 1
        var control = [UInt8](repeating: 0, count: 64)
        return withUnsafeMutablePointer(to: &byte) { bytePointer in
            control.withUnsafeMutableBytes { controlBytes in
                var iov = iovec(iov_base: bytePointer, iov_len: 1)
                return withUnsafeMutablePointer(to: &iov) { iovPointer -> Int32? in
                    var message = msghdr()
                    message.msg_iov = iovPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    guard recvmsg(fd, &message, 0) == 1, bytePointer.pointee == 0,
                          message.msg_controllen >= MemoryLayout<cmsghdr>.size else { return nil }
                    let header = controlBytes.load(as: cmsghdr.self)
                    guard header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS) else { return nil }
                    return controlBytes.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self)
                }
            }
        }
    }

    /// What the client sent, once the exchange is over.
    func wait() -> [UInt8] {
        done.wait()
        return received
    }

    /// Forgets what was received, for the next exchange.
    func reset() { received = [] }
}

struct FakeScannerError: Error {
    var call: String
}
