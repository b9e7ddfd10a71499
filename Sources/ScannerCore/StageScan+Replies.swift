import PosternPolicy
import PosternScanning
import PosternSpool

extension StageScan {
    /// Each recipient's end-of-data fate and the state its route gets.
    struct Replies {
        var fates: [RecipientFate]
        var status: [Int: RecipientStatus] = [:]
        /// After queue: some recipient could not be scanned; the whole message waits.
        var retry = false

        /// Why, for the client and the log: the first refused or blocked recipient's reason,
        /// else the first tempfail's.
        func reason(_ decisions: [RecipientDecision]) -> String {
            let refusing = decisions.first { !fates[$0.recipient].isAccepted || status[$0.recipient] == .blocked }
            return (refusing ?? decisions.first { $0.main == .tempfail })?.reasons.last ?? ""
        }
    }

    /// Turns each decision into a fate and a route state; before the queue, SMTP's single
    /// reply comes from the one rule receiverd applies too (``RecipientFate/oneReply(_:reportable:)``).
    func settle(_ scan: Context) -> Replies {
        var replies = Replies(fates: Array(repeating: .deliver, count: scan.envelope.recipients.count))
        if stage == .beforeQueue {
            beforeQueue(scan, &replies)
        } else {
            for d in scan.decisions { afterQueue(d, scan, &replies) }
        }
        return replies
    }

    /// Before the queue each recipient's main action is a fate (RouteResolver.fate, with
    /// ReturnReject); refused and retried recipients are dropped, reported ones owe a DSN.
    private func beforeQueue(_ scan: Context, _ replies: inout Replies) {
        for d in scan.decisions { replies.fates[d.recipient] = scan.fate(d) }
        if scan.envelope.mailProtocol != .lmtp {
            let one = RecipientFate.oneReply(scan.open.map { replies.fates[$0] }, reportable: true)
            for (i, fate) in zip(scan.open, one) { replies.fates[i] = fate }
        }
        for i in scan.open {
            switch replies.fates[i] {
            case .deliver: replies.status[i] = .pending
            case .report: replies.status[i] = accepted(i, scan)
            case .discard, .refuse, .retry: replies.status[i] = .dropped
            }
        }
    }

    private func afterQueue(_ d: RecipientDecision, _ scan: Context, _ replies: inout Replies) {
        let i = d.recipient
        switch d.main {
        case .pass, .continue:
            replies.status[i] = .pending
        case .discard:
            replies.status[i] = .dropped
        case .reject:
            replies.status[i] = accepted(i, scan)
        case .tempfail:
            if clock() - scan.envelope.arrival > Double(config.sender.maxQueueLifetime.components.seconds) {
                replies.status[i] = accepted(i, scan)   // could not be scanned for the whole queue lifetime
            } else {
                replies.retry = true
            }
        }
    }

    /// A blocked recipient whose message was accepted: a DSN is owed, unless SkipDSNOnBlock.
    private func accepted(_ i: Int, _ scan: Context) -> RecipientStatus {
        scan.flag("SkipDSNOnBlock", i, default: config.sender.skipDSNOnBlock) ? .dropped : .blocked
    }
}
