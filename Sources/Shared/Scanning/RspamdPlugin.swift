#if canImport(FoundationEssentials)
import FoundationEssentials   // JSONDecoder without the rest of Foundation
#else
import Foundation
#endif

/// `[Rspamd]`: posts the message with its envelope to rspamd's normal worker (`/checkv2`) and
/// decides spam by Postern's thresholds, falling back to rspamd's `required_score`.
///
/// rspamd's `action` is not used for the verdict, not even `reject` when no
/// `UnconditionalSpamThreshold` is set: rspamd's `required_score` is already its reject score,
/// so `reject` adds nothing to the score test, and a forced action (GTUBE, a rate limit) comes
/// with the score raised to that action's threshold (rspamd 3.4: GTUBE gives 15/15). Thresholds
/// stay in one place, Postern's configuration; the action is in the detail for the log.
/// - SeeAlso: https://rspamd.com/doc/developers/protocol.html
public struct RspamdPlugin: ScanPlugin {
    public let name = "rspamd"
    public let maxSize: Int
    public let addresses: [ScannerAddress]
    /// Score from which a message is `spam`; nil: rspamd's `required_score` (its reject score).
    public let spamThreshold: Double?
    /// Score from which a message is `unconditional-spam`; nil: never.
    public let unconditionalThreshold: Double?

    /// rspamd's JSON names every symbol with a description and options: tens of KB for a
    /// busy message; a megabyte means something else answered.
    public static let replyLimit = 1 << 20

    public init(addresses: [ScannerAddress], maxSize: Int, spamThreshold: Double?, unconditionalThreshold: Double?) {
        self.addresses = addresses
        self.maxSize = maxSize
        self.spamThreshold = spamThreshold
        self.unconditionalThreshold = unconditionalThreshold
    }

    /// What rspamd said about one message.
    public struct Reply: Sendable, Hashable, Decodable {
        public var score: Double
        /// rspamd's reject score.
        public var requiredScore: Double
        /// `no action`, `greylist`, `add header`, `rewrite subject`, `soft reject`, `reject`.
        public var action: String
        /// Symbol names, sorted (JSON objects have no order).
        public var symbols: [String]

        public init(score: Double, requiredScore: Double, action: String, symbols: [String]) {
            self.score = score
            self.requiredScore = requiredScore
            self.action = action
            self.symbols = symbols
        }

        enum CodingKeys: String, CodingKey { case score, requiredScore = "required_score", action, symbols }
        private struct Ignored: Decodable { init(from decoder: any Decoder) {} }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(score: try c.decode(Double.self, forKey: .score),
                      requiredScore: try c.decode(Double.self, forKey: .requiredScore),
                      action: try c.decodeIfPresent(String.self, forKey: .action) ?? "",
                      symbols: (try c.decodeIfPresent([String: Ignored].self, forKey: .symbols) ?? [:]).keys.sorted())
        }
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        let socket = try ScannerSocket.connect(to: addresses, service: "rspamd", deadline: deadline)
        try socket.writeAll(Self.writeRequest(request, host: Self.hostField(socket.address)), deadline: deadline)
        try socket.writeAll(request.message, deadline: deadline)
        // `Connection: close` should end the reply with EOF; a complete reply, or one that can
        // no longer become valid, ends it sooner.
        let bytes = try socket.readReply(limit: Self.replyLimit, deadline: deadline) { bytes in
            do { return try HTTPResponse.parse(bytes, atEOF: false) != nil } catch { return true }
        }
        do throws(PluginError) {
            guard let response = try HTTPResponse.parse(bytes, atEOF: true) else { throw PluginError("truncated reply") }
            guard response.status == 200 else {
                // rspamd explains in JSON: {"error":"invalid command","error_domain":"protocol-error"}
                let error = (try? JSONDecoder().decode([String: String].self, from: Data(response.body)))?["error"]
                throw PluginError("HTTP \(response.status) \(SpamVerdict.printable(error ?? response.reason))")
            }
            return finding(for: try Self.parseReply(response.body))
        } catch {
            throw PluginError("\(socket.peer): \(error.message)")
        }
    }

    /// The verdict and header fields by this plug-in's thresholds.
    public func finding(for reply: Reply) -> Finding {
        var finding = SpamVerdict(score: reply.score, threshold: spamThreshold ?? reply.requiredScore,
                                  unconditionalThreshold: unconditionalThreshold, tests: reply.symbols, decimals: 2)
            .finding(plugin: name)
        if !reply.action.isEmpty { finding.detail += " (rspamd action: \(SpamVerdict.printable(reply.action)))" }
        return finding
    }

    /// The request head (rspamd protocol, "HTTP request headers"); the message is the body.
    /// Empty envelope values are left out, except the null sender, which is `<>`.
    public static func writeRequest(_ request: ScanRequest, host: String) -> [UInt8] {
        var head = "POST /checkv2 HTTP/1.1\r\nHost: \(SpamVerdict.printable(host))\r\n"
        func field(_ name: String, _ value: String) {
            let clean = SpamVerdict.printable(value)
            if !clean.isEmpty { head += "\(name): \(clean)\r\n" }
        }
        field("Queue-Id", request.queueID)
        field("From", request.mailFrom.isEmpty ? "<>" : request.mailFrom)
        for recipient in request.recipients { field("Rcpt", recipient) }
        field("IP", request.clientIP)
        field("Helo", request.helo)
        head += "Content-Length: \(request.message.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8)
    }

    /// The `Host` field for `address`: required by HTTP/1.1, ignored by rspamd.
    static func hostField(_ address: ScannerAddress) -> String {
        switch address.location {
        case .inet(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix: "localhost"
        }
    }

    /// The `/checkv2` JSON: `{"score": 15.0, "required_score": 15.0, "action": "reject",
    /// "symbols": {"GTUBE": {…}}, …}`; other members are ignored.
    public static func parseReply(_ body: [UInt8]) throws(PluginError) -> Reply {
        do {
            let reply = try JSONDecoder().decode(Reply.self, from: Data(body))
            guard reply.score.isFinite, reply.requiredScore.isFinite else { throw PluginError("score is not a number") }
            return reply
        } catch let error as PluginError {
            throw error
        } catch {
            throw PluginError("reply is not rspamd's JSON: \(PluginError.unexpected(String(decoding: body, as: UTF8.self)).message)")
        }
    }
}

extension RspamdPlugin {
    /// An HTTP/1.1 response as rspamd sends it, the body without its framing. rspamd 3.4 sends
    /// `Content-Length`; chunked replies and bodies ended by EOF are read too (a proxy may
    /// stand in between).
    public struct HTTPResponse: Sendable, Hashable {
        public var status: Int
        public var reason: String
        public var body: [UInt8]

        public init(status: Int, reason: String, body: [UInt8]) {
            self.status = status
            self.reason = reason
            self.body = body
        }

        /// RFC 9112 §4, §6.3, §7.1:
        ///
        ///     HTTP-message = status-line *( field-line CRLF ) CRLF [ message-body ]
        ///     status-line  = HTTP-version SP 3DIGIT SP [ reason-phrase ]
        ///     chunked-body = *chunk last-chunk trailer-section CRLF
        ///     chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        ///
        /// nil while more bytes are needed. At EOF a body without length or chunking ends there
        /// (§6.3 rule 8) and anything incomplete is an error. 1xx interim responses are skipped;
        /// 204 and 304 have no body (rule 1).
        public static func parse(_ bytes: [UInt8], atEOF: Bool) throws(PluginError) -> HTTPResponse? {
            var rest = bytes[...]
            while true {
                guard let headEnd = find([13, 10, 13, 10], in: rest) else {
                    if atEOF { throw PluginError(rest.isEmpty ? "closed the connection without a reply" : "truncated reply header") }
                    return nil
                }
                let head = String(decoding: rest[..<headEnd], as: UTF8.self)
                rest = rest[(headEnd + 4)...]
                let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
                let status = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard status.count >= 2, status[0].hasPrefix("HTTP/1."), status[1].utf8.count == 3,
                      status[1].utf8.allSatisfy(ASCII.isDigit), let code = Int(status[1]) else { throw PluginError.unexpected(lines[0]) }
                if code < 200 { continue }
                var length: Int?
                var chunked = false
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { throw PluginError.unexpected(line) }
                    let value = ASCII.lowercased(ASCII.trim(line[line.index(after: colon)...]))
                    switch ASCII.lowercased(String(line[..<colon])) {
                    case "content-length":
                        guard !value.isEmpty, value.utf8.count < 16, value.utf8.allSatisfy(ASCII.isDigit) else { throw PluginError.unexpected(line) }
                        length = Int(value)
                    case "transfer-encoding":
                        guard ASCII.trim(value.split(separator: ",").last ?? "") == "chunked" else { throw PluginError.unexpected(line) }
                        chunked = true
                    default:
                        break
                    }
                }
                let body: [UInt8]
                if code == 204 || code == 304 {
                    body = []   // §6.3 rule 1: never a body
                } else if chunked {
                    guard let data = try dechunk(rest, atEOF: atEOF) else { return nil }
                    body = data
                } else if let length {
                    guard rest.count >= length else {
                        if atEOF { throw PluginError("reply shorter than its Content-Length") }
                        return nil
                    }
                    body = Array(rest.prefix(length))
                } else {
                    guard atEOF else { return nil }
                    body = Array(rest)
                }
                return HTTPResponse(status: code, reason: status.count == 3 ? String(status[2]) : "", body: body)
            }
        }

        private static func dechunk(_ data: ArraySlice<UInt8>, atEOF: Bool) throws(PluginError) -> [UInt8]? {
            var body: [UInt8] = []
            var rest = data
            while true {
                guard let lineEnd = find([13, 10], in: rest) else { return try incomplete(atEOF) }
                let size = rest[..<lineEnd].prefix { $0 != UInt8(ascii: ";") }.filter { !ASCII.isSpace($0) }
                let hex: (UInt8) -> Bool = { ASCII.isDigit($0) || (0x61...0x66).contains(ASCII.lower($0)) }
                guard !size.isEmpty, size.count <= 8, size.allSatisfy(hex), let n = Int(String(decoding: size, as: UTF8.self), radix: 16) else {
                    throw PluginError("bad chunk size in reply")
                }
                rest = rest[(lineEnd + 2)...]
                if n == 0 {
                    // trailer-section CRLF: field lines up to an empty one.
                    while true {
                        guard let end = find([13, 10], in: rest) else { return try incomplete(atEOF) }
                        if end == rest.startIndex { return body }
                        rest = rest[(end + 2)...]
                    }
                }
                guard rest.count >= n + 2 else { return try incomplete(atEOF) }
                guard rest.dropFirst(n).starts(with: [13, 10]) else { throw PluginError("bad chunk in reply") }
                body += rest.prefix(n)
                rest = rest.dropFirst(n + 2)
            }
        }

        private static func incomplete(_ atEOF: Bool) throws(PluginError) -> [UInt8]? {
            if atEOF { throw PluginError("truncated chunked reply") }
            return nil
        }

        /// Index of the first `pattern` in `bytes`.
        private static func find(_ pattern: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
            guard bytes.count >= pattern.count else { return nil }
            var i = bytes.startIndex
            while i <= bytes.endIndex - pattern.count {
                if bytes[i] == pattern[0] && bytes[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
                i += 1
            }
            return nil
        }
    }
}
