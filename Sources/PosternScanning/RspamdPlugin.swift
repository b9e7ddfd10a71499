#if canImport(FoundationEssentials)
import FoundationEssentials   // JSONDecoder without the rest of Foundation
#else
import Foundation
#endif
import PosternPolicy
import PosternSMTP

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

    public init(settings s: SpamSettings) {
        self.init(addresses: s.addresses, maxSize: s.maxSize, spamThreshold: s.spamThreshold, unconditionalThreshold: s.unconditionalThreshold)
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

        package enum CodingKeys: String, CodingKey { case score, requiredScore = "required_score", action, symbols }
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
        do throws(PluginError) {
            try socket.writeAll(Self.writeRequest(request, host: Self.hostField(socket.address)), deadline: deadline)
            try request.message.forEachChunk(size: ScannerSocket.chunkSize) { p, _ throws(PluginError) in try socket.writeAll(p, deadline: deadline) }
        } catch {
            // rspamd may answer before it has read the whole request (a message over its
            // `max_message`) and close: the write then fails, but the reply that says why is
            // usually still there to read. Only a refusal can come that early. A message
            // that could not be read is not waited on.
            if request.message.readFailure == nil,
               case .success(let early)? = try? Self.readResponse(socket, deadline: min(deadline, .now + .seconds(1))), early.status != 200 {
                throw PluginError("\(socket.peer): \(Self.httpError(early))")
            }
            throw error
        }
        let read = try Self.readResponse(socket, deadline: deadline)
        do throws(PluginError) {
            let response = try read.get()
            guard response.status == 200 else { throw PluginError(Self.httpError(response)) }
            return finding(for: try Self.parseReply(response.body))
        } catch {
            throw PluginError("\(socket.peer): \(error.message)")
        }
    }

    /// rspamd's explanation of an error status, in JSON: {"error":"invalid command",…}.
    static func httpError(_ response: HTTPResponse) -> String {
        let error = (try? JSONDecoder().decode([String: String].self, from: Data(response.body)))?["error"]
        return "HTTP \(response.status) \(SpamVerdict.printable(error ?? response.reason))"
    }

    /// The HTTP reply, read until it is complete or the connection ends. Thrown: what the
    /// socket says (naming the peer); returned: the reply, or why it cannot be read as one.
    static func readResponse(_ socket: ScannerSocket, deadline: ContinuousClock.Instant) throws(PluginError) -> Result<HTTPResponse, PluginError> {
        // `Connection: close` should end the reply with EOF; a complete reply, or one that can
        // no longer become valid, ends it sooner. The reader gets each new piece once.
        let reader = HTTPReplyReader()
        var fed = 0
        var early: Result<HTTPResponse?, PluginError> = .success(nil)
        _ = try socket.readReply(limit: Self.replyLimit, deadline: deadline) { bytes in
            defer { fed = bytes.count }
            do throws(PluginError) {
                early = .success(try reader.feed(bytes[fed...]))
            } catch {
                early = .failure(error)
            }
            if case .success(nil) = early { return false }
            return true
        }
        switch early {
        case .success(let complete?): return .success(complete)
        case .success(nil): return Result { () throws(PluginError) in try reader.finish() }
        case .failure(let error): return .failure(error)
        }
    }

    /// The verdict and header fields by this plug-in's thresholds.
    public func finding(for reply: Reply) -> Finding {
        var verdict = SpamVerdict(score: reply.score, threshold: spamThreshold ?? reply.requiredScore,
                                  unconditionalThreshold: unconditionalThreshold, tests: reply.symbols, decimals: 2)
        if !reply.action.isEmpty { verdict.note = "rspamd action: \(SpamVerdict.printable(reply.action))" }
        return verdict.finding(plugin: name)
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
    package static func hostField(_ address: ScannerAddress) -> String {
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
