import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool

extension StageScan.Context {
    /// The previous verdict (or a new one) with this scan's time, findings and score, and the
    /// plug-ins' own header fields, which every copy gets.
    func verdictBase(now: Double, findings: [Finding]) -> Verdict {
        var verdict = previous ?? Verdict(scanned: 0)
        verdict.scanned = now
        verdict.findings += findings.filter { !$0.detail.isEmpty }.map { "\($0.plugin) \($0.detail)" }
        verdict.score = findings.reduce(baseScore) { $0 + ($1.score ?? 0) }
        for h in StageScan.unique(findings.flatMap(\.headers)) where !verdict.addHeaders.contains(h) { verdict.addHeaders.append(h) }
        return verdict
    }

    /// `add-header(…)` goes only to its recipient's copy, and only if that copy is delivered.
    func addRecipientHeaders(to verdict: inout Verdict, replies: StageScan.Replies) {
        for d in decisions where replies.status[d.recipient] == .pending {
            for case .addHeader(let name, let body) in d.extras {
                let field = "\(name): \(body)"
                if !(verdict.recipientHeaders[d.recipient] ?? []).contains(field) { verdict.recipientHeaders[d.recipient, default: []].append(field) }
            }
        }
    }

    /// Why each recipient that does not get the message was stopped (its DSN's text); a
    /// discard explains nothing.
    func addReasons(to verdict: inout Verdict, replies: StageScan.Replies) {
        for d in decisions where replies.status[d.recipient] != .pending && d.main != .discard {
            if let reason = d.reasons.last { verdict.reasons[d.recipient] = reason }
        }
    }

    /// Every recipient's routes in envelope order: those not open keep theirs, the open ones
    /// get their resolved route (and TLS policy), redirected to other addresses where asked.
    func routes(replies: StageScan.Replies, tls: inout [Int: TLSPolicy]) -> [Verdict.Route] {
        let resolver = RouteResolver(config: config)
        let oldRoutes = previous?.routes ?? []
        let openSet = Set(open)
        var routes: [Verdict.Route] = []
        for i in envelope.recipients.indices {
            guard openSet.contains(i) else {
                routes += oldRoutes.filter { $0.recipient == i }
                continue
            }
            let blocks = byRecipient[i]?.blocks ?? [], score = byRecipient[i]?.score
            let endpoint = resolver.route(for: envelope, recipient: i, headers: headers, blocks: blocks, score: score)
            tls[i] = resolver.tlsPolicy(for: envelope, recipient: i, headers: headers, blocks: blocks, score: score)
            let status = replies.status[i] ?? .pending
            let redirectedBefore = oldRoutes.filter { $0.recipient == i && $0.address != nil }
            if let redirect = redirect(i), status == .pending {
                // The recipient's copy goes to these addresses instead (its route, its DSN options).
                for address in redirect { routes.append(.init(recipient: i, endpoint: endpoint.description, address: address)) }
            } else if !redirectedBefore.isEmpty && status == .pending {
                routes += redirectedBefore   // the before-queue redirect stands
            } else {
                routes.append(.init(recipient: i, status: status, endpoint: endpoint.description))
            }
        }
        return routes
    }

    /// The addresses of recipient `i`'s `redirect(…)`, if its decision has one.
    private func redirect(_ i: Int) -> [String]? {
        byRecipient[i]?.extras.lazy.compactMap { extra -> [String]? in
            if case .redirect(let to) = extra { return to } else { return nil }
        }.first
    }

    /// Before the queue: whether a recipient that gets the message still has after-queue plug-ins.
    func afterQueuePending(replies: StageScan.Replies) -> Bool {
        stage == .beforeQueue && open.contains { i in
            replies.status[i] == .pending && !engine.filters(.afterQueue, for: envelope, recipient: i, headers: headers).isEmpty
        }
    }
}
