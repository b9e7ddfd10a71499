import Glibc
import PosternTestSupport
import PosternUtil
import Testing

/// The golden transcripts of `Tests/e2e/transcripts` (Postfix's `smtpd_check.in`/`.ref`),
/// replayed in process: each `.in` sent in one write (lines ended by CRLF, pipelined), every
/// reply line until the server closes compared with the `.ref` (queue ids masked). The e2e
/// test sends the same files over a real socket to a running receiverd.
@Suite struct TranscriptReplayTests {
    static let directory: String = {
        // #filePath is …/Tests/ReceiverCoreTests/TranscriptReplayTests.swift
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/e2e/transcripts"
    }()

    static let cases = ["bare-address", "bdat", "errors", "esmtp", "helo", "lmtp", "pipelining"]

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
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if text.hasSuffix("\n") { lines.removeLast() }
        let h = try await HandlerHarness(config: "[Receiver]\nProtectedNetworks = 127.0.0.0/8\n", lmtp: name.hasPrefix("lmtp"))
        try await h.send(lines.map { $0 + "\r\n" }.joined())
        let got = try await h.readToClose().replacingOccurrences(of: "\r\n", with: "\n")
        #expect(got == (try Self.read("\(Self.directory)/\(name).ref")))
    }
}
