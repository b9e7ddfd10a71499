import PosternSMTP
import PosternSpool
import PosternUtil
/// What one plug-in found in one message.
///
/// `verdict` names the per-verdict action parameter: a finding of plug-in `clamav` with verdict
/// `infected` is handled by `clamav/InfectedActions` (rules first, then the section's
/// `InfectedActions`). `clean` and `skipped` findings have no actions.
public struct Finding: Sendable, Hashable {
    /// Lower-cased plug-in (section) name, e.g. `clamav`.
    public var plugin: String
    /// `clean`, `skipped`, `error`, or a plug-in verdict such as `infected`, `spam`, `banned`.
    public var verdict: FindingVerdict
    /// Threat or banned-object names, for `block:` terms, logs and DSNs.
    public var names: [String]
    /// What the plug-in adds to the message's unified score.
    public var score: Double?
    /// Header fields the plug-in adds whatever the action (`X-Spam-Status: …`), `Name: value`.
    public var headers: [String]
    /// One line for logs and `rules test`.
    public var detail: String
    /// A spam plug-in's score and thresholds, so that a recipient's own thresholds can judge
    /// the same score again (``ScanEngine/decide(_:filters:envelope:recipient:headers:baseScore:)``).
    package var spam: SpamVerdict?

    public init(plugin: String, verdict: FindingVerdict, names: [String] = [], score: Double? = nil,
                headers: [String] = [], detail: String = "") {
        self.plugin = plugin
        self.verdict = verdict
        self.names = names
        self.score = score
        self.headers = headers
        self.detail = detail
    }

    /// Equal when they found the same: `spam` is how the verdict was reached.
    public static func == (a: Finding, b: Finding) -> Bool {
        (a.plugin, a.verdict, a.names, a.score, a.headers, a.detail) == (b.plugin, b.verdict, b.names, b.score, b.headers, b.detail)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(plugin)
        hasher.combine(verdict)
        hasher.combine(names)
        hasher.combine(score)
        hasher.combine(headers)
        hasher.combine(detail)
    }

    public static let clean = FindingVerdict.clean
    public static let skipped = FindingVerdict.skipped
    public static let error = FindingVerdict.error

    /// One line for replies, DSNs and the quarantine: the detail, or the names when the detail
    /// does not give them (`attachments: banned: docs.zip/setup.exe`).
    /// A failed scanner is not explained to the outside world (addresses, errno texts): the
    /// detail stays in the log and the spool.
    public var reason: String {
        if verdict == .error { return "\(plugin): scanner temporarily unavailable" }
        if names.allSatisfy({ detail.contains($0) }) { return "\(plugin): \(detail)" }
        return "\(plugin): \(verdict): \(names.joined(separator: ", "))"
    }

    /// Whether the finding asks for actions.
    public var isBlocking: Bool { verdict.isBlocking }
}

/// A plug-in failed: down, timed out, or answered something it should not. The message then
/// gets `ProcessingErrors`, never a silent pass.
public struct PluginError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The message and what scanners may want to know about its envelope.
public struct ScanRequest: Sendable {
    /// Queue id, for the scanner's own logs.
    public var queueID: String
    /// The message as received: header and body, CRLF line ends, dot-stuffing removed; read
    /// from its spool file only as far as the plug-in asks (``StoredMessage``).
    public var message: StoredMessage
    /// Envelope sender without `<>`; `""` is the null sender.
    public var mailFrom: String
    /// Envelope recipients without `<>`.
    public var recipients: [String]
    /// The SMTP client's address ("" when unknown), or XFORWARD's ADDR when given.
    public var clientIP: String
    /// The HELO/EHLO argument ("" when unknown).
    public var helo: String
    /// By plug-in name, the largest `MaxSize` a recipient's rules give it, where that is not
    /// the section's own: the plug-in then scans for the recipients whose limit the message fits.
    public var sizeLimits: [String: Int] = [:]

    public init(queueID: String, message: [UInt8], mailFrom: String = "", recipients: [String] = [],
                clientIP: String = "", helo: String = "") {
        self.init(queueID: queueID, message: StoredMessage(message), mailFrom: mailFrom, recipients: recipients, clientIP: clientIP, helo: helo)
    }

    public init(queueID: String, message: StoredMessage, mailFrom: String = "", recipients: [String] = [],
                clientIP: String = "", helo: String = "") {
        self.queueID = queueID
        self.message = message
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.clientIP = clientIP
        self.helo = helo
    }
}

extension StoredMessage {
    /// ``forEachChunk(size:_:readError:)`` for a plug-in: a failed read is the plug-in's error.
    public func forEachChunk(size: Int, _ body: (UnsafeRawBufferPointer, _ last: Bool) throws(PluginError) -> Void) throws(PluginError) {
        try forEachChunk(size: size, body, readError: PluginError.unreadable)
    }
}

extension PluginError {
    /// The message could not be read from its spool file.
    package static func unreadable(_ error: SpoolError) -> PluginError { PluginError("cannot read the message: \(error)") }
}

/// One scanner. Plug-ins are blocking (they run on a thread pool) and must give up by
/// `deadline`, throwing ``PluginError``.
public protocol ScanPlugin: Sendable {
    /// Lower-cased section name: `clamav`, `spamassassin`, `rspamd`, `headersfilter`, `attachments`.
    var name: String { get }
    /// Messages larger than this skip the plug-in (the finding says so and a header is added).
    var maxSize: Int { get }
    /// Scans one message.
    func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding
}
