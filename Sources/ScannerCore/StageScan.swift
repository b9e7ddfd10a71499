import Glibc
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool

/// One scan of one message at one stage: the plug-ins run, each open recipient gets a decision,
/// and the decisions become a verdict and (before queue) the end-of-data reply codes.
///
/// A message in `scan/` without a verdict never had a before-queue scan (asynchronous mode, or
/// ProcessingErrors = pass), so it gets both lists: never a silent pass. Postern's own mail
/// (DSNs without the blocked content, notifications) is not scanned.
/// - SeeAlso: DESIGN.md §5, `docs/plugins.md`
package struct StageScan {
    package let config: PosternConfig
    package let stage: ScanStage

    package struct Outcome {
        package var verdict: Verdict
        /// What end of data means for each recipient, envelope order (before queue; the reply
        /// is its outcome, `RecipientFate.outcome`).
        package var fates: [RecipientFate]
        /// Why, for a refusal.
        package var text: String
        /// After queue: a tempfail; nothing is written and the message is scanned again later.
        package var retry: Bool
        package var decisions: [RecipientDecision]
        package var findings: [Finding]
    }

    package func run(file: SpoolFile, message: [UInt8], deadline: ContinuousClock.Instant) -> Outcome {
        let e = file.envelope
        let engine = ScanEngine(config: config)
        let previous = file.verdict
        // Header rules need the header; plug-ins parse what they need themselves.
        let headers: [HeaderField]? = config.rules.usesHeaders ? HeaderField.parseSection(message) : nil
        // A recipient redirected before the queue has several routes: it is still one recipient.
        let open = previous.map { v in StageScan.unique(v.routes.filter { $0.status == .pending }.map(\.recipient)) }
            ?? Array(e.recipients.indices)
        let openSet = Set(open)
        let lists = open.map { i -> [String] in
            if stage == .beforeQueue { return engine.filters(.beforeQueue, for: e, recipient: i, headers: headers) }
            guard previous == nil else { return engine.filters(.afterQueue, for: e, recipient: i, headers: headers) }
            return engine.allFilters(for: e, recipient: i, headers: headers)
        }
        let names = StageScan.unique(lists.flatMap { $0 })
        var findings: [Finding] = []
        // Mail that already passed a Postern (valid loop guard) and Postern's own mail are not scanned.
        if !e.guardValid && e.receivedWith != "local" && !names.isEmpty {
            let request = ScanRequest(queueID: e.id, message: message, mailFrom: e.mailFrom, recipients: e.recipients.map(\.address),
                                      clientIP: StageScan.clientAddress(e), helo: e.xforward["HELO"] ?? e.helo)
            findings = engine.run(names, on: request, deadline: deadline)
        }
        let base = previous?.score ?? 0
        let decisions = zip(open, lists).map { i, list in
            engine.decide(findings, filters: list, envelope: e, recipient: i, headers: headers, baseScore: base)
        }

        let byRecipient = Dictionary(uniqueKeysWithValues: decisions.map { ($0.recipient, $0) })
        let resolver = RouteResolver(config: config)
        // Per recipient: what end of data means for it and the state of its route.
        let lmtp = e.mailProtocol == "lmtp"
        var fates = Array(repeating: RecipientFate.deliver, count: e.recipients.count)
        var status: [Int: RecipientStatus] = [:]
        var retry = false
        func accepted(_ i: Int) -> RecipientStatus {
            engine.flag("SkipDSNOnBlock", for: e, recipient: i, headers: headers, scanned: byRecipient[i], default: config.sender.skipDSNOnBlock) ? .dropped : .blocked
        }
        if stage == .beforeQueue {
            for d in decisions {
                fates[d.recipient] = resolver.fate(of: d.main, for: e, recipient: d.recipient, headers: headers, blocks: d.blocks, score: d.score)
            }
            // SMTP has one reply for all (the rule receiverd applies too); LMTP one each.
            if !lmtp {
                for (i, fate) in zip(open, RecipientFate.oneReply(open.map { fates[$0] }, reportable: true)) { fates[i] = fate }
            }
            for i in open {
                switch fates[i] {
                case .deliver: status[i] = .pending
                case .report: status[i] = accepted(i)
                case .discard, .refuse, .retry: status[i] = .dropped
                }
            }
        } else {
            for d in decisions {
                let i = d.recipient
                switch d.main {
                case .pass, .continue: status[i] = .pending
                case .discard: status[i] = .dropped
                case .reject: status[i] = accepted(i)
                case .tempfail:
                    if timespec.now.seconds - e.arrival > Double(config.sender.maxQueueLifetime.components.seconds) {
                        status[i] = accepted(i)   // could not be scanned for the whole queue lifetime
                    } else {
                        retry = true
                    }
                }
            }
        }
        let refusing = decisions.first { !fates[$0.recipient].isAccepted || status[$0.recipient] == .blocked }
        let text = (refusing ?? decisions.first { $0.main == .tempfail })?.reasons.last ?? ""

        var verdict = previous ?? Verdict(scanned: 0)
        verdict.scanned = timespec.now.seconds
        verdict.findings += findings.filter { !$0.detail.isEmpty }.map { "\($0.plugin) \($0.detail)" }
        verdict.score = findings.reduce(base) { $0 + ($1.score ?? 0) }
        // The plug-ins' own fields go to every copy; add-header(…) only to its recipient's.
        for h in StageScan.unique(findings.flatMap(\.headers)) where !verdict.addHeaders.contains(h) { verdict.addHeaders.append(h) }
        for d in decisions where status[d.recipient] == .pending {
            for case .addHeader(let name, let body) in d.extras {
                let field = "\(name): \(body)"
                if !(verdict.recipientHeaders[d.recipient] ?? []).contains(field) { verdict.recipientHeaders[d.recipient, default: []].append(field) }
            }
        }
        for d in decisions where status[d.recipient] != .pending && d.main != .discard {
            if let reason = d.reasons.last { verdict.reasons[d.recipient] = reason }
        }
        let oldRoutes = previous?.routes ?? []
        verdict.routes = []
        for i in e.recipients.indices {
            if !openSet.contains(i) {
                verdict.routes += oldRoutes.filter { $0.recipient == i }
                continue
            }
            let endpoint = resolver.route(for: e, recipient: i, headers: headers,
                                          blocks: byRecipient[i]?.blocks ?? [], score: byRecipient[i]?.score)
            verdict.recipientTLS[i] = resolver.tlsPolicy(for: e, recipient: i, headers: headers,
                                                          blocks: byRecipient[i]?.blocks ?? [], score: byRecipient[i]?.score)
            let redirect = byRecipient[i]?.extras.lazy.compactMap { extra -> [String]? in
                if case .redirect(let to) = extra { return to } else { return nil }
            }.first
            let redirectedBefore = oldRoutes.filter { $0.recipient == i && $0.address != nil }
            if let redirect, status[i] == .pending {
                // The recipient's copy goes to these addresses instead (its route, its DSN options).
                for address in redirect { verdict.routes.append(.init(recipient: i, endpoint: endpoint.description, address: address)) }
            } else if !redirectedBefore.isEmpty && status[i] == .pending {
                verdict.routes += redirectedBefore   // the before-queue redirect stands
            } else {
                verdict.routes.append(.init(recipient: i, status: status[i] ?? .pending, endpoint: endpoint.description))
            }
        }
        verdict.afterQueuePending = stage == .beforeQueue && zip(open, lists).contains { i, _ in
            status[i] == .pending && !engine.filters(.afterQueue, for: e, recipient: i, headers: headers).isEmpty
        }
        verdict.action = StageScan.summary(verdict.routes.map(\.status), fates: stage == .beforeQueue ? fates : [])
        return Outcome(verdict: verdict, fates: fates, text: text, retry: retry, decisions: decisions, findings: findings)
    }

    /// One word for logs and `queue show`.
    package static func summary(_ statuses: [RecipientStatus], fates: [RecipientFate]) -> String {
        if !fates.isEmpty && fates.allSatisfy({ $0 == .retry }) { return "tempfail" }
        if !fates.isEmpty && fates.allSatisfy({ $0 == .refuse }) { return "reject" }
        let kinds = Set(statuses.map(\.rawValue))
        switch kinds {
        case [RecipientStatus.pending.rawValue]: return "pass"
        case [RecipientStatus.blocked.rawValue]: return "reject"
        case [RecipientStatus.dropped.rawValue]: return fates.contains(.refuse) || fates.contains(.retry) ? "reject" : "discard"
        default: return "split"
        }
    }

    /// The original client for the scanners: XFORWARD's ADDR without Postfix's `IPV6:` prefix,
    /// and nothing for its `[UNAVAILABLE]`/`[TEMPUNAVAIL]` placeholders.
    package static func clientAddress(_ e: Envelope) -> String {
        guard var addr = e.xforward["ADDR"] else { return e.clientIP }
        if addr.uppercased().hasPrefix("IPV6:") { addr = String(addr.dropFirst(5)) }
        return addr.hasPrefix("[") ? "" : addr
    }

    package static func unique<T: Hashable>(_ items: [T]) -> [T] {
        var seen: Set<T> = []
        return items.filter { seen.insert($0).inserted }
    }
}
