/// An invariant a fuzz target checks did not hold: the input is a finding, as a crash is.
public struct FuzzFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One fuzz target: its name (the directory under `Fuzz/Corpus` and `Fuzz/Regressions`) and
/// the harness libFuzzer and the unit tests run each input through.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What it feeds and what it checks, for `postern-fuzz list`.
    public let summary: String
    let body: @Sendable (UnsafeRawBufferPointer) throws(FuzzFailure) -> Void

    init(_ name: String, _ summary: String, _ body: @escaping @Sendable (UnsafeRawBufferPointer) throws(FuzzFailure) -> Void) {
        self.name = name
        self.summary = summary
        self.body = body
    }

    /// Runs one input. A parser that traps crashes the process, as it would the daemon; a
    /// broken invariant throws.
    public func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        try body(data)
    }

    public func run(_ bytes: [UInt8]) throws(FuzzFailure) {
        // withUnsafeBytes rethrows untyped errors: carry the failure out as a value.
        let failure = bytes.withUnsafeBytes { data -> FuzzFailure? in
            do throws(FuzzFailure) { try body(data) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }
}

/// Every parser that reads what a peer, a scanner, an administrator or a damaged disk wrote.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        FuzzTarget("smtp-command", "receiverd's command lines: LineFramer + Command/MailParameters; canonical re-parse and spool round trip of MAIL/RCPT",
                   SMTPCommandFuzz.run),
        FuzzTarget("line-framer", "LineFramer: any chunking gives the same lines, nothing buffered past the limit",
                   LineFramerFuzz.run),
        FuzzTarget("data-decoder", "DATA/BDAT: DataDecoder against a reference, chunk independence, DotStuffer round trip",
                   DataDecoderFuzz.run),
        FuzzTarget("reply-decoder", "senderd's view of a next hop: ReplyDecoder on a channel, chunk independence, Reply.write fixed point",
                   ReplyDecoderFuzz.run),
        FuzzTarget("mime", "MIMEParser + the attachments plug-in on a whole message: bounds, decode limits",
                   MIMEFuzz.run),
        FuzzTarget("mime-header", "MIMEHeaderValue (RFC 2045/2231) and EncodedWord (RFC 2047) on one field value",
                   MIMEHeaderFuzz.run),
        FuzzTarget("transfer-encoding", "quoted-printable and base64: encode/decode round trips, decode limits",
                   TransferEncodingFuzz.run),
        FuzzTarget("eight-bit", "EightBitDowngrade: 7-bit output that decodes to the input's parts",
                   EightBitFuzz.run),
        FuzzTarget("message-header", "HeaderField.parseSection, HeaderInspector chunk independence, LoopGuard",
                   MessageHeaderFuzz.run),
        FuzzTarget("zip", "ZipReader entries and extraction, then the attachments plug-in on the zip attached",
                   ZipFuzz.run),
        FuzzTarget("inflate", "Inflater on raw deflate data: cap and keep; zlib deflate round trip",
                   InflateFuzz.run),
        FuzzTarget("clamd-reply", "ClamAVPlugin.parseReply", ClamdReplyFuzz.run),
        FuzzTarget("spamd-reply", "SpamAssassinPlugin.parseReply and the header fields made from it", SpamdReplyFuzz.run),
        FuzzTarget("rspamd-reply", "rspamd's HTTP response reader (complete prefixes) and JSON reply", RspamdReplyFuzz.run),
        FuzzTarget("config", "PosternConfig.parse on a whole configuration file", ConfigFuzz.run),
        FuzzTarget("rules", "RuleSet.parse on a rules file, then every parameter resolved", RulesFuzz.run),
        FuzzTarget("value-syntax", "sizes, durations, endpoints, addresses, CIDR, xtext, enhanced codes, IPC lines: parse/format round trips",
                   ValueSyntaxFuzz.run),
        FuzzTarget("spool", "a spool file's header, envelope and verdict: in-place offsets, write/parse fixed point",
                   SpoolFuzz.run),
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}
