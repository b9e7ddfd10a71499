import PosternSMTP
/// What is known about one message and one recipient when a parameter is resolved.
///
/// Every field is optional: nil means *not known yet* and makes the terms that need it
/// unknown (the rule then does not apply), which is different from an empty value.
public struct RuleContext: Sendable {
    /// Envelope sender without `<>`; `""` is the null sender.
    public var from: String?
    /// The recipient being resolved, without `<>`.
    public var rcpt: String?
    /// The SMTP client's address.
    public var clientIP: String?
    /// The SMTP client's port.
    public var clientPort: Int?
    /// The local address the message arrived on.
    public var serverIP: String?
    /// The HELO/EHLO argument.
    public var helo: String?
    /// The original client from XFORWARD ADDR.
    public var xforwardAddr: String?
    /// `smtp` or `lmtp`.
    public var mailProtocol: String?
    /// Message size in bytes.
    public var size: Int?
    /// Header fields, values unfolded or not (they are unfolded for matching).
    public var headers: [HeaderField]?
    /// The score plug-ins gave the message.
    public var score: Double?
    /// Threat and banned-object names found by scanning; empty = scanned and clean.
    public var blocks: [String]?

    /// Memberwise; everything defaults to unknown.
    public init(from: String? = nil, rcpt: String? = nil, clientIP: String? = nil, clientPort: Int? = nil,
                serverIP: String? = nil, helo: String? = nil, xforwardAddr: String? = nil,
                mailProtocol: String? = nil, size: Int? = nil, headers: [HeaderField]? = nil,
                score: Double? = nil, blocks: [String]? = nil) {
        self.from = from
        self.rcpt = rcpt
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.serverIP = serverIP
        self.helo = helo
        self.xforwardAddr = xforwardAddr
        self.mailProtocol = mailProtocol
        self.size = size
        self.headers = headers
        self.score = score
        self.blocks = blocks
    }
}
