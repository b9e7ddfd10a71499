import Glibc
import PosternTestSupport
import PosternUtil
import Testing

/// The golden transcripts of `Tests/e2e/transcripts` (Postfix's `smtpd_check.in`/`.ref`),
/// replayed in process as a client sends them: each group of lines up to a `=== wait` line in
/// one write (lines ended by CRLF, an RFC 2920 group), then the replies to it read before the
/// next; every reply line until the server closes compared with the `.ref` (queue ids masked).
/// The e2e test (`Tests/e2e/test_transcripts.py`, which describes the format) sends the same
/// files over a real socket to a running receiverd.
@Suite struct TranscriptReplayTests {
    static let directory: String = {
        // #filePath is …/Tests/ReceiverCoreTests/TranscriptReplayTests.swift
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/e2e/transcripts"
    }()

    static let cases = ["bare-address", "bdat", "errors", "esmtp", "helo", "lmtp", "pipelining", "pipelining-data", "pipelining-ehlo"]

    static func read(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw TranscriptMissing(path: path) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    struct TranscriptMissing: Error { let path: String }

    @Test func everyTranscriptIsReplayed() throws {
        let names = try SysCall.listDirectory(Self.directory).filter { $0.hasSuffix(".in") }.map { String($0.dropLast(3)) }.sorted()
        #expect(names == Self.cases, "a new transcript: add it to the list")
    }

    @Test(arguments: cases)
    func transcript(_ name: String) async throws {
        let text = try Self.read("\(Self.directory)/\(name).in")
        let h = try await HandlerHarness(config: "[Receiver]\nProtectedNetworks = 127.0.0.0/8\n", lmtp: name.hasPrefix("lmtp"))
        var client = Client(lmtp: name.hasPrefix("lmtp"))
        for write in Client.writes(text) {
            let received = try await h.read { client.complete($0) }
            #expect(client.complete(received), "the replies to what was sent before came")
            client.waited(received)
            try await h.send(write)
            client.sent(write, received)
        }
        let got = try await h.readToClose().replacingOccurrences(of: "\r\n", with: "\n")
        #expect(got == (try Self.read("\(Self.directory)/\(name).ref")))
    }

    @Test func theClientCountsTheRepliesItIsOwed() {
        var c = Client(lmtp: true)
        let greeting = "220 x LMTP\r\n"
        #expect(c.complete(greeting))
        c.sent("LHLO a\r\n", greeting)
        #expect(!c.complete(greeting + "250-x\r\n"))
        let hello = greeting + "250-x\r\n250 PIPELINING\r\n"
        #expect(c.complete(hello))
        c.sent("MAIL FROM:<a@b.c>\r\nRCPT TO:<d@b.c>\r\nRCPT TO:<e>\r\nRCPT TO:<f@b.c>\r\nDATA\r\n", hello)
        let data = hello + "250 ok\r\n250 ok\r\n501 no\r\n250 ok\r\n354 go\r\n"
        #expect(c.complete(data))
        c.waited(data)
        c.sent("x\r\n.\r\nBDAT 5\r\nab\r\nQUIT\r\n", data)
        #expect(!c.complete(data + "250 b\r\n250 f\r\n250 chunk\r\n"), "two recipients taken, the chunk, QUIT")
        #expect(c.complete(data + "250 b\r\n250 f\r\n250 chunk\r\n221 bye\r\n"))
    }

    /// A client of the golden files: which replies it is owed for what it sent.
    struct Client {
        let lmtp: Bool
        /// The verb each reply answers, the greeting first.
        var owed = ["CONNECT"]
        var inData = false

        init(lmtp: Bool) { self.lmtp = lmtp }

        /// The writes of a `.in` file: its lines, CRLF-ended, split at the wait lines.
        static func writes(_ text: String) -> [String] {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if text.hasSuffix("\n") { lines.removeLast() }
            return lines.split(separator: "=== wait", omittingEmptySubsequences: false).map { $0.map { $0 + "\r\n" }.joined() }
        }

        /// The last line of each complete reply in `received`.
        static func finals(_ received: String) -> [Substring] {
            received.split(separator: "\r\n", omittingEmptySubsequences: false).dropLast().filter {
                $0.count < 4 || $0.dropFirst(3).first == " "
            }
        }

        func complete(_ received: String) -> Bool { Self.finals(received).count >= owed.count }

        /// After a write's replies: a DATA that got 354 is followed by the message.
        mutating func waited(_ received: String) {
            if owed.last == "DATA", Self.finals(received).last?.hasPrefix("354") == true { inData = true }
        }

        /// Counts the replies `write` earns: one per command (BDAT's chunk is skipped); the end
        /// of the message one, or in LMTP one per recipient taken.
        mutating func sent(_ write: String, _ received: String) {
            let bytes = Array(write.utf8)
            var pos = 0
            while pos < bytes.count, let cr = bytes[pos...].firstIndex(of: 13), cr + 1 < bytes.count, bytes[cr + 1] == 10 {
                let line = String(decoding: bytes[pos..<cr], as: UTF8.self)
                pos = cr + 2
                if inData {
                    guard line == "." else { continue }
                    inData = false
                    owed += Array(repeating: "END", count: lmtp ? taken(received) : 1)
                    continue
                }
                let verb = line.prefix { $0 != " " }.uppercased()
                owed.append(verb)
                if verb == "BDAT", let size = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
                    pos += size
                }
            }
        }

        /// The recipients of the open transaction that the server took.
        func taken(_ received: String) -> Int {
            let finals = Self.finals(received)
            let mail = owed.lastIndex(of: "MAIL") ?? 0
            return (mail..<owed.count).filter { owed[$0] == "RCPT" && $0 < finals.count && finals[$0].hasPrefix("2") }.count
        }
    }
}
