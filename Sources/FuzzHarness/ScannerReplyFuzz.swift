import PosternScanning

/// Header fields a plug-in adds end up in the message: one line each, printable, within
/// RFC 5322's 998 octets.
func checkHeaders(_ finding: Finding) throws(FuzzFailure) {
    for field in finding.headers {
        try expect(field.utf8.count <= 998, "header field of \(field.utf8.count) octets")
        try expect(field.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "header field \(show(field)) is not printable ASCII")
    }
    try expect(!finding.detail.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }, "detail \(show(finding.detail)) breaks a log line")
    for name in finding.names {
        try expect(!name.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }, "name \(show(name)) breaks a line")
    }
}

/// clamd's one-line answer to zINSTREAM.
/// Invariants: no crash; a verdict's names and detail stay on one line.
enum ClamdReplyFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        guard let finding = try? ClamAVPlugin.parseReply([UInt8](data)) else { return }
        try expect(finding.verdict == "clean" || finding.verdict == ClamAVPlugin.infected, "verdict \(finding.verdict)")
        try checkHeaders(finding)
    }
}

/// spamd's answer to SYMBOLS, and the X-Spam-* fields made from it.
/// Invariants: scores are finite; the fields are printable single lines of at most 998 octets.
enum SpamdReplyFuzz {
    static let plugins = [
        SpamAssassinPlugin(addresses: [], maxSize: 1, spamThreshold: nil, unconditionalThreshold: nil, user: nil),
        SpamAssassinPlugin(addresses: [], maxSize: 1, spamThreshold: 5, unconditionalThreshold: 1e300, user: nil),
    ]

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        guard let reply = try? SpamAssassinPlugin.parseReply([UInt8](data)) else { return }
        try expect(reply.score.isFinite && reply.required.isFinite, "score \(reply.score) / \(reply.required)")
        for plugin in plugins { try checkHeaders(plugin.finding(for: reply)) }
    }
}

/// rspamd's HTTP response and /checkv2 JSON.
/// Invariants: a prefix the reader calls complete reads the same as the whole input (the
/// plug-in stops reading at the first complete prefix); the fields made from it are printable.
enum RspamdReplyFuzz {
    static let plugin = RspamdPlugin(addresses: [], maxSize: 1, spamThreshold: nil, unconditionalThreshold: nil)

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        let open = try? RspamdPlugin.HTTPResponse.parse(bytes, atEOF: false)
        let closed = try? RspamdPlugin.HTTPResponse.parse(bytes, atEOF: true)
        if let open { try expect(closed == open, "complete before EOF but different at EOF") }
        var chunker = Chunker(data)
        for _ in 0..<4 where !bytes.isEmpty {
            let cut = Int(chunker.next() % UInt64(bytes.count + 1))
            if let early = try? RspamdPlugin.HTTPResponse.parse(Array(bytes[..<cut]), atEOF: false) {
                try expect(open == early, "a complete prefix of \(cut) octets reads differently from the whole reply")
            }
        }
        // The body on its own as rspamd's JSON (the corpus holds bare JSON bodies too).
        for body in [closed?.body, bytes].compactMap({ $0 }) {
            if let reply = try? RspamdPlugin.parseReply(body) {
                try expect(reply.score.isFinite && reply.requiredScore.isFinite, "score \(reply.score) / \(reply.requiredScore)")
                try checkHeaders(plugin.finding(for: reply))
            }
        }
    }
}
