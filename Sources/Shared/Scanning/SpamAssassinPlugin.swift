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
        try socket.writeAll(request.message, deadline: deadline)
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

/// The verdict and the header fields of both spam plug-ins, the same whichever scanner is
/// used, so that filters on `X-Spam-Flag` or `X-Spam-Status` keep working after a switch.
/// XXX: shared with RspamdPlugin; would be its own file, `SpamVerdict.swift`.
struct SpamVerdict {
    static let spam = "spam"
    static let unconditionalSpam = "unconditional-spam"
    /// RFC 5322 §2.1.1: a line is at most 998 octets. We do not fold (a finding's header is one
    /// line), so the test list is cut to fit.
    static let lineLimit = 998

    var score: Double
    var threshold: Double
    var unconditionalThreshold: Double?
    var tests: [String]
    /// Digits after the point in the headers: spamd reports one, rspamd more.
    var decimals: Int

    var verdict: String {
        if let unconditionalThreshold, score >= unconditionalThreshold { return Self.unconditionalSpam }
        return score >= threshold ? Self.spam : Finding.clean
    }

    func finding(plugin: String) -> Finding {
        let verdict = self.verdict
        let isSpam = verdict != Finding.clean
        let score = Self.format(self.score, decimals: decimals)
        let required = Self.format(threshold, decimals: decimals)
        let head = "X-Spam-Status: \(isSpam ? "Yes" : "No"), score=\(score) required=\(required) tests="
        var headers = [head + Self.testList(tests, room: Self.lineLimit - head.utf8.count), "X-Spam-Score: \(score)"]
        if isSpam { headers.append("X-Spam-Flag: YES") }
        var detail = "\(verdict): score \(score), required \(required)"
        if let unconditionalThreshold { detail += ", unconditional \(Self.format(unconditionalThreshold, decimals: decimals))" }
        // spamd writes -0.0 for a message that hit only zero-score rules.
        return Finding(plugin: plugin, verdict: verdict, score: self.score + 0, headers: headers, detail: detail)
    }

    /// `A,B,C` in at most `room` octets, ending in `,...` when names had to be left out;
    /// `none` when there are none (SpamAssassin's spelling). Names are made printable.
    static func testList(_ tests: [String], room: Int) -> String {
        let names = tests.map { printable($0, excluding: [",", " "]) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return "none" }
        var list = ""
        for (i, name) in names.enumerated() {
            let next = list.isEmpty ? name : list + "," + name
            let reserve = i == names.count - 1 ? 0 : 4
            guard next.utf8.count + reserve <= room else { return list.isEmpty ? "..." : list + ",..." }
            list = next
        }
        return list
    }

    /// Printable ASCII only: a scanner's text must not break a header field or a log line.
    static func printable(_ text: some StringProtocol, excluding: Set<Character> = []) -> String {
        String(text.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7f && !excluding.contains(Character($0)) ? Character($0) : "_" })
    }

    /// `score` with `decimals` digits after the point, rounded half away from zero, without
    /// Foundation: `1000.0`, `-0.10`.
    static func format(_ value: Double, decimals: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard value.isFinite, scaled < 1e15 else { return "\(value)" }
        let n = Int64(scaled)
        let fraction = String(n % scale)
        let sign = value < 0 && n != 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(n) }
        return sign + String(n / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
