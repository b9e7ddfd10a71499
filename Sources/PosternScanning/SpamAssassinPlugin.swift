import PosternPolicy
import PosternSMTP
import PosternUtil
/// `[SpamAssassin]`: asks spamd for the score and the rules that hit (`SYMBOLS`), and decides
/// spam by Postern's own thresholds, falling back to spamd's `required_score`.
/// - SeeAlso: spamd(1p); the protocol is `spamd/PROTOCOL` in the SpamAssassin sources.
public struct SpamAssassinPlugin: ScanPlugin {
    public let name = "spamassassin"
    public let maxSize: Int
    public let addresses: [ScannerAddress]
    /// Score from which a message is `spam`; nil: spamd's `required_score`.
    public let spamThreshold: Double?
    /// Score from which a message is `unconditional-spam`; nil: never.
    public let unconditionalThreshold: Double?
    /// Whose preferences spamd uses (`User:`); nil: spamd's default user.
    public let user: String?

    /// A SYMBOLS reply is a status line, two header fields and the rule names (a few KB at most).
    public static let replyLimit = 64 << 10

    public init(addresses: [ScannerAddress], maxSize: Int, spamThreshold: Double?,
                unconditionalThreshold: Double?, user: String?) {
        self.addresses = addresses
        self.maxSize = maxSize
        self.spamThreshold = spamThreshold
        self.unconditionalThreshold = unconditionalThreshold
        self.user = user
    }

    public init(settings s: SpamSettings) {
        self.init(addresses: s.addresses, maxSize: s.maxSize, spamThreshold: s.spamThreshold,
                  unconditionalThreshold: s.unconditionalThreshold, user: s.user)
    }

    /// What spamd said about one message.
    public struct Reply: Sendable, Hashable {
        public var score: Double
        /// spamd's `required_score` for the user.
        public var required: Double
        /// Names of the rules that hit, in spamd's order.
        public var symbols: [String]

        public init(score: Double, required: Double, symbols: [String]) {
            self.score = score
            self.required = required
            self.symbols = symbols
        }
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        let socket = try ScannerSocket.connect(to: addresses, service: "spamd", deadline: deadline)
        try socket.writeAll(Self.writeRequest(contentLength: request.message.count, user: user), deadline: deadline)
        try request.message.forEachChunk(size: ScannerSocket.chunkSize) { p, _ throws(PluginError) in try socket.writeAll(p, deadline: deadline) }
        socket.shutdownWrite()
        // spamd closes the connection after its one reply.
        let bytes = try socket.readReply(limit: Self.replyLimit, deadline: deadline)
        do {
            return finding(for: try Self.parseReply(bytes))
        } catch {
            throw PluginError("\(socket.peer): \(error.message)")
        }
    }

    /// The verdict and header fields by this plug-in's thresholds.
    public func finding(for reply: Reply) -> Finding {
        SpamVerdict(score: reply.score, threshold: spamThreshold ?? reply.required,
                    unconditionalThreshold: unconditionalThreshold, tests: reply.symbols, decimals: 1)
            .finding(plugin: name)
    }

    /// The request head; the message follows.
    ///
    ///     request = "SYMBOLS SPAMC/1.5" CRLF "Content-length: " 1*DIGIT CRLF
    ///               [ "User: " username CRLF ] CRLF
    public static func writeRequest(contentLength: Int, user: String?) -> [UInt8] {
        var head = "SYMBOLS SPAMC/1.5\r\nContent-length: \(contentLength)\r\n"
        if let user, case let clean = SpamVerdict.printable(user), !clean.isEmpty { head += "User: \(clean)\r\n" }
        return Array((head + "\r\n").utf8)
    }

    /// spamd's reply to SYMBOLS:
    ///
    ///     reply   = "SPAMD/" version SP code SP text CRLF *( field CRLF ) CRLF body
    ///     field   = "Spam: " ( "True" / "False" ) " ; " score " / " threshold
    ///             / "Content-length: " 1*DIGIT / other-field
    ///     body    = [ symbol *( "," symbol ) ] [ CRLF ]
    ///
    /// Code 0 (`EX_OK`) only; anything else is spamd's error (`76 Bad header line`).
    public static func parseReply(_ bytes: [UInt8]) throws(PluginError) -> Reply {
        guard !bytes.isEmpty else { throw PluginError("closed the connection without a reply") }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "\r\n\r\n", maxSplits: 1, omittingEmptySubsequences: false)
        let lines = parts[0].split(separator: "\r\n", omittingEmptySubsequences: false)
        let status = lines[0].split(separator: " ", maxSplits: 2)
        guard status.count >= 2, status[0].hasPrefix("SPAMD/") else { throw PluginError.unexpected(lines[0]) }
        guard status[1] == "0" else { throw PluginError("error \(SpamVerdict.printable(lines[0].dropFirst(status[0].count + 1)))") }
        var spam: (score: Double, required: Double)?
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw PluginError.unexpected(line) }
            let value = ASCII.trim(line[line.index(after: colon)...])
            switch ASCII.lowercased(String(line[..<colon])) {
            case "spam":
                // "True ; 1000.0 / 5.0"
                let halves = value.split(separator: ";", maxSplits: 1)
                let numbers = halves.count == 2 ? halves[1].split(separator: "/").map { Double(ASCII.trim($0)) } : []
                guard numbers.count == 2, let score = numbers[0], let required = numbers[1], score.isFinite, required.isFinite else {
                    throw PluginError.unexpected(line)
                }
                spam = (score, required)
            case "content-length":
                guard let n = Int(value), n >= 0 else { throw PluginError.unexpected(line) }
                length = n
            default:
                break
            }
        }
        guard let spam else { throw PluginError("reply without a Spam: field") }
        var body = parts.count == 2 ? Array(parts[1].utf8) : []
        if let length {
            guard body.count >= length else { throw PluginError("reply shorter than its Content-length") }
            body = Array(body.prefix(length))
        }
        let symbols = String(decoding: body, as: UTF8.self).split(separator: ",")
            .map { ASCII.trim($0.filter { $0 != "\r\n" && $0 != "\n" && $0 != "\r" }) }.filter { !$0.isEmpty }
        return Reply(score: spam.score, required: spam.required, symbols: symbols)
    }
}
