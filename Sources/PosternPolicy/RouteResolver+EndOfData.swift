import PosternSMTP
import PosternSpool

/// The end-of-data decisions the rules take per recipient, shared by scannerd (the
/// before-queue scan) and receiverd (`ProcessingErrors` when scannerd gives no verdict), so
/// that the two can never answer the same case differently.
extension RouteResolver {
    /// `ProcessingErrors` for one recipient: a rule's value, else `[Receiver] ProcessingErrors`.
    public func processingErrors(for e: Envelope, recipient: Int, headers: [HeaderField]? = nil,
                                 blocks: [String]? = nil, score: Double? = nil) -> ActionList {
        if case .actions(let list)? = setting("ProcessingErrors", for: e, recipient: recipient, headers: headers,
                                              blocks: blocks, score: score) { return list }
        return config.receiver.processingErrorsActions
    }

    /// A yes/no parameter (`ReturnReject`, `SkipDSNOnBlock`) for one recipient; after a scan,
    /// `block:` and `score:` terms see what it found.
    public func flag(_ parameter: String, for e: Envelope, recipient: Int, headers: [HeaderField]?,
                     blocks: [String]? = nil, score: Double? = nil, default value: Bool) -> Bool {
        if case .bool(let b)? = setting(parameter, for: e, recipient: recipient, headers: headers, blocks: blocks, score: score) { return b }
        return value
    }

    /// What a recipient's main action means at end of data (before the queue): a reject is
    /// refused, or accepted and reported when `ReturnReject = no` applies to it.
    public func fate(of main: MainAction, for e: Envelope, recipient: Int, headers: [HeaderField]?,
                     blocks: [String]? = nil, score: Double? = nil) -> RecipientFate {
        switch main {
        case .pass, .continue: return .deliver
        case .discard: return .discard
        case .tempfail: return .retry
        case .reject:
            let refuse = flag("ReturnReject", for: e, recipient: recipient, headers: headers, blocks: blocks, score: score,
                              default: config.receiver.returnReject)
            return refuse ? .refuse : .report
        }
    }

    /// receiverd, when scannerd gave no verdict in time: each recipient's `ProcessingErrors`,
    /// made one reply for SMTP and for LMTP alike. Without a verdict nothing records a
    /// recipient's state, so a message is either accepted for all (scanned later with both
    /// lists) or for none: a recipient told 550 must not be delivered by that later scan.
    public func unscannedFates(for e: Envelope) -> [RecipientFate] {
        let fates = e.recipients.indices.map { fate(of: processingErrors(for: e, recipient: $0).main, for: e, recipient: $0, headers: nil) }
        return RecipientFate.oneReply(fates, reportable: false)
    }
}
