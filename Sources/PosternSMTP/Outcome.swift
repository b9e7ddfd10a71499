/// Everything a transaction, a recipient or a session can end in, apart from the command
/// table's own syntax and sequence replies: what the client is told at end of data, and why a
/// session is closed. ``ReplyTable`` is the one place that turns an outcome into a reply, as
/// Postfix's `cleanup_strerror.c` does for the cleanup status.
/// - SeeAlso: RFC 5321 §4.2, RFC 3463, docs/ipc.md (scannerd's outcomes cross the socket)
public enum Outcome: Sendable, Hashable {
    // End of data: the whole message, or one recipient of it (LMTP, a before-queue scan).
    /// Durable in the spool (or, for a recipient a scan discarded, dropped there on purpose).
    case queued(id: String)
    /// A before-queue scan (or `ProcessingErrors`) refuses it; `reason` is shown to the client.
    case contentRejected(reason: String)
    /// A before-queue scan (or `ProcessingErrors`) asks the client to try again later.
    case contentTempfailed(reason: String)
    /// The queue file could not be created, written or made durable.
    case queueWriteError
    /// As ``queueWriteError``, because the spool's file system is full.
    case diskFull
    /// A CR or LF that is not part of a CRLF (SMTP smuggling, RFC 5321 §2.3.8).
    case bareNewline
    /// A text line longer than ``SMTPDefaults/maxTextLine``.
    case lineTooLong
    /// Longer than `[Receiver] MaxMessageSize`.
    case tooBig
    /// More `Received:` fields than `[Receiver] MaxReceivedHeaders`.
    case mailLoop

    // Session closings.
    /// Graceful shutdown (SIGTERM).
    case shuttingDown
    /// `CommandTimeout`, `DataTimeout` or the minimum data rate.
    case timeout
    /// The hard error limit (Postfix `smtpd_hard_error_limit`).
    case tooManyErrors
    /// More sessions than `[Receiver] MaxSessions`.
    case tooManyConnections
    /// More concurrent sessions from one address than `[Receiver] ClientConnectionLimit`
    /// (Postfix's `smtpd_client_connection_count_limit`).
    case clientConnectionLimit(client: String)
    /// More new connections from one address in `ClientRateTimeUnit` than
    /// `[Receiver] ClientConnectionRateLimit` (Postfix's `smtpd_client_connection_rate_limit`).
    case clientConnectionRate(client: String)
    /// The client sent more behind a command whose reply it had to read first: behind a DATA
    /// that was not answered 354, or behind a BDAT refused for want of MAIL or RCPT (RFC 2920
    /// §3.1; Postfix's `smtpd_forbid_unauth_pipelining`).
    case improperPipelining
    /// The client's address is not in `[Receiver] ProtectedNetworks`.
    case notProtected(client: String)

    /// Whether the message (or the recipient) was accepted: 250 at end of data.
    public var isQueued: Bool {
        if case .queued = self { return true }
        return false
    }

    /// The one SMTP reply to the outcomes of several recipients: the first that is not
    /// `queued`, else the first; nil for none. The before-queue scan leaves a refusal only
    /// where nobody gets the message (`RecipientFate.oneReply`), so receiverd commits a
    /// message over SMTP only when this is `queued`.
    public static func smtpReply(_ outcomes: [Outcome]) -> Outcome? {
        outcomes.first { !$0.isQueued } ?? outcomes.first
    }

    /// One word for logs, metrics and the IPC line (`VERDICT`, docs/ipc.md).
    public var keyword: String {
        switch self {
        case .queued: "queued"
        case .contentRejected: "content-rejected"
        case .contentTempfailed: "content-tempfailed"
        case .queueWriteError: "queue-write-error"
        case .diskFull: "disk-full"
        case .bareNewline: "bare-newline"
        case .lineTooLong: "line-too-long"
        case .tooBig: "too-big"
        case .mailLoop: "mail-loop"
        case .shuttingDown: "shutting-down"
        case .timeout: "timeout"
        case .tooManyErrors: "too-many-errors"
        case .tooManyConnections: "too-many-connections"
        case .notProtected: "not-protected"
        case .clientConnectionLimit: "client-connection-limit"
        case .clientConnectionRate: "client-connection-rate"
        case .improperPipelining: "improper-pipelining"
        }
    }

    /// The reason a content outcome carries, "" for the others.
    public var reason: String {
        switch self {
        case .contentRejected(let r), .contentTempfailed(let r): r
        default: ""
        }
    }

    /// The outcomes a scan gives a recipient, back from their ``keyword``: the only ones
    /// scannerd may send (docs/ipc.md); nil for any other word.
    public static func scanned(keyword: Substring, id: String, reason: String) -> Outcome? {
        switch keyword {
        case "queued": .queued(id: id)
        case "content-rejected": .contentRejected(reason: reason)
        case "content-tempfailed": .contentTempfailed(reason: reason)
        default: nil
        }
    }
}
