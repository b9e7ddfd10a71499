import PosternSMTP

/// What end of data means for one recipient once its main action is known: the decision
/// behind the reply, before the queue. Both the before-queue scan (scannerd) and receiverd
/// (`ProcessingErrors` when scannerd gives no verdict) decide it with ``RouteResolver/fate(of:for:recipient:headers:blocks:score:)``
/// and reduce several to one SMTP reply with ``oneReply(_:reportable:)``.
/// - SeeAlso: DESIGN.md §5
public enum RecipientFate: Sendable, Hashable {
    /// 250, and the message goes on to the recipient.
    case deliver
    /// 250, and the recipient's copy is dropped.
    case discard
    /// 250, blocked all the same: the sender gets a DSN (`ReturnReject = no`, or the refused
    /// recipients of a split verdict that has one SMTP reply).
    case report
    /// 550 to the client.
    case refuse
    /// 451 to the client.
    case retry

    /// The fates answered 250 at end of data.
    public var isAccepted: Bool { self == .deliver || self == .discard || self == .report }

    /// The recipient's end-of-data outcome (``ReplyTable`` makes the reply).
    public func outcome(id: String, reason: String) -> Outcome {
        switch self {
        case .deliver, .discard, .report: .queued(id: id)
        case .refuse: .contentRejected(reason: reason)
        case .retry: .contentTempfailed(reason: reason)
        }
    }

    /// The one rule for one SMTP reply to several recipients (LMTP answers each on its own).
    /// `reportable`: a verdict is written, so a refused recipient can be accepted and reported
    /// by DSN instead (scannerd's scan); without one (scannerd gave no verdict) nothing can be
    /// reported and a refusal stays a refusal.
    ///
    /// - all alike (all 250, all 550, all 451): as they are;
    /// - any 451: 451 for all — retrying everything loses nothing;
    /// - nothing reportable: 451 for all, the client tries again (never a silent pass);
    /// - 550 beside recipients that get the message: 250 for all, the refused ones reported by DSN;
    /// - 550 beside discards and reports only: the reports are refused too — nobody would get
    ///   the message, and no bounce goes to a sender that may be forged. The discards stay
    ///   what they are; the reply is the refusal (``Outcome/smtpReply(_:)``).
    ///
    /// Either way, once a recipient is refused or retried nobody gets the message or a DSN.
    public static func oneReply(_ fates: [RecipientFate], reportable: Bool) -> [RecipientFate] {
        let fates = reportable ? fates : fates.map { $0 == .report ? .refuse : $0 }
        guard let first = fates.first, fates.contains(where: { !$0.answeredAlike(first) }) else { return fates }
        if fates.contains(.retry) || !reportable { return fates.map { _ in .retry } }
        if fates.contains(.deliver) { return fates.map { $0 == .refuse ? .report : $0 } }
        return fates.map { $0 == .report ? .refuse : $0 }
    }

    private func answeredAlike(_ other: RecipientFate) -> Bool {
        isAccepted ? other.isAccepted : self == other
    }
}
