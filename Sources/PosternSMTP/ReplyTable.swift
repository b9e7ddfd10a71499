/// The one table from ``Outcome`` to reply: code, enhanced status and text (Postfix's
/// `cleanup_strerror.c`). Local trouble is always 4xx. With `softBounce` (`[Receiver]
/// SoftBounce = yes`, Postfix's `soft_bounce`) every 5xx it gives becomes 4xx, the enhanced
/// status too: the client keeps the mail while a new rule set or plug-in is tried, and nothing
/// is refused for good. The command table's syntax replies (500, 501, 503…) are not outcomes
/// and stay as they are, as in Postfix's smtpd.
/// - SeeAlso: RFC 5321 §4.2.2–§4.2.3, RFC 3463 §3
public struct ReplyTable: Sendable, Hashable {
    /// Named in the session closings, as Postfix's smtpd names `$myhostname`.
    public let hostname: String
    public let softBounce: Bool

    /// The longest scan reason shown in a reply: with the rest of the text it stays inside an
    /// SMTP reply line (512 octets, RFC 5321 §4.5.3.1.5).
    public static let maxReason = 400

    public init(hostname: String, softBounce: Bool = false) {
        self.hostname = hostname
        self.softBounce = softBounce
    }

    public func reply(_ outcome: Outcome) -> Reply {
        let r = Self.entry(outcome, hostname: hostname)
        return softBounce ? Self.soften(r) : r
    }

    private static func entry(_ outcome: Outcome, hostname: String) -> Reply {
        switch outcome {
        case .queued(let id): Reply(250, EnhancedStatus(2, 0, 0), "Ok: queued as \(id)")
        case .contentRejected(let reason): Reply(550, EnhancedStatus(5, 7, 1), "Message rejected" + shown(reason))
        case .contentTempfailed(let reason): Reply(451, EnhancedStatus(4, 7, 1), "Try again later" + shown(reason))
        case .queueWriteError: Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error")
        case .diskFull: Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
        case .bareNewline:
            Reply(550, EnhancedStatus(5, 5, 2), "Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)")
        case .lineTooLong:
            Reply(550, EnhancedStatus(5, 5, 2), "Error: message has a line longer than \(SMTPDefaults.maxTextLine) octets")
        case .tooBig: Reply(552, EnhancedStatus(5, 3, 4), "Error: message file too big")
        case .mailLoop: Reply(554, EnhancedStatus(5, 4, 6), "Error: too many hops (mail forwarding loop)")
        case .shuttingDown: Reply(421, EnhancedStatus(4, 3, 2), "\(hostname) Service shutting down, closing channel")
        case .timeout: Reply(421, EnhancedStatus(4, 4, 2), "\(hostname) Error: timeout exceeded")
        case .tooManyErrors: Reply(421, EnhancedStatus(4, 7, 0), "\(hostname) Error: too many errors")
        case .tooManyConnections: Reply(421, EnhancedStatus(4, 7, 0), "\(hostname) Error: too many connections")
        case .clientConnectionLimit(let client), .clientConnectionRate(let client):
            Reply(421, EnhancedStatus(4, 7, 0), "\(hostname) Error: too many connections from \(client)")
        case .improperPipelining: Reply(554, EnhancedStatus(5, 5, 0), "Error: SMTP protocol synchronization")
        case .notProtected(let client): Reply(554, EnhancedStatus(5, 7, 1), "Access denied: \(client) is not in ProtectedNetworks")
        }
    }

    private static func shown(_ reason: String) -> String {
        reason.isEmpty ? "" : ": " + String(reason.prefix(maxReason))
    }

    /// 5xx → 4xx and 5.X.Y → 4.X.Y (Postfix `smtpd_chat_reply` under `soft_bounce`).
    private static func soften(_ r: Reply) -> Reply {
        guard r.isPermanent else { return r }
        var soft = r
        soft.code -= 100
        if soft.status?.klass == 5 { soft.status?.klass = 4 }
        return soft
    }
}
