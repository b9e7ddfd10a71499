import PosternScanning
import PosternSpool

extension StageScan {
    /// Each recipient's end-of-data reply code and the state its route gets.
    struct Replies {
        var codes: [Int]
        var status: [Int: RecipientStatus] = [:]
        /// After queue: some recipient could not be scanned; the whole message waits.
        var retry = false

        /// Why, for the client and the log: the first refused or blocked recipient's reason,
        /// else the first tempfail's.
        func reason(_ decisions: [RecipientDecision]) -> String {
            let refusing = decisions.first { codes[$0.recipient] != 250 || status[$0.recipient] == .blocked }
            return (refusing ?? decisions.first { $0.main == .tempfail })?.reasons.last ?? ""
        }
    }

    /// Turns each decision into a reply and a route state, then gives SMTP its single reply.
    func settle(_ scan: Context) -> Replies {
        var replies = Replies(codes: Array(repeating: 250, count: scan.envelope.recipients.count))
        for d in scan.decisions { settle(d, scan, &replies) }
        if stage == .beforeQueue && scan.envelope.mailProtocol != .lmtp { oneSMTPReply(scan, &replies) }
        return replies
    }

    private func settle(_ d: RecipientDecision, _ scan: Context, _ replies: inout Replies) {
        let i = d.recipient
        switch d.main {
        case .pass, .continue:
            replies.status[i] = .pending
        case .discard:
            replies.status[i] = .dropped
        case .reject:
            if stage == .beforeQueue && scan.flag("ReturnReject", i, default: config.receiver.returnReject) {
                replies.codes[i] = 550
                replies.status[i] = .dropped
            } else {
                replies.status[i] = accepted(i, scan)
            }
        case .tempfail:
            if stage == .beforeQueue {
                replies.codes[i] = 451
                replies.status[i] = .dropped
            } else if clock() - scan.envelope.arrival > Double(config.sender.maxQueueLifetime.components.seconds) {
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

    /// SMTP has one reply for all: any tempfail retries everything; a split refusal is
    /// accepted and the refused recipients get a DSN (DESIGN.md §5). When nobody would get
    /// the message (refused and discarded only) it is refused: no bounce to a forged sender.
    private func oneSMTPReply(_ scan: Context, _ replies: inout Replies) {
        if replies.codes.contains(451) {
            replies.codes = replies.codes.map { _ in 451 }
        } else if replies.codes.contains(550)
                    && scan.open.contains(where: { replies.codes[$0] == 250 && replies.status[$0] == .pending }) {
            for i in scan.open where replies.codes[i] == 550 {
                replies.codes[i] = 250
                replies.status[i] = accepted(i, scan)
            }
        }
    }
}
