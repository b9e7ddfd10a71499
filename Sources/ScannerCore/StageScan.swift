import Glibc
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil

/// One scan of one message at one stage: the plug-ins run, each open recipient gets a decision,
/// and the decisions become a verdict and (before queue) each recipient's end-of-data fate.
///
/// A message in `scan/` without a verdict never had a before-queue scan (asynchronous mode, or
/// ProcessingErrors = pass), so it gets both lists: never a silent pass. Postern's own mail
/// (DSNs without the blocked content, notifications) is not scanned.
/// - SeeAlso: DESIGN.md §5, `docs/plugins.md`
package struct StageScan {
    /// Runs the named plug-ins on a message by a deadline and gives one finding each; never
    /// throws (a failure is an `error` finding). ``ScanEngine/run(_:on:deadline:)`` in the
    /// daemon; tests inject findings here and need no scanner.
    package typealias PluginRunner = @Sendable (_ names: [String], _ request: ScanRequest, _ deadline: ContinuousClock.Instant) -> [Finding]

    package let config: PosternConfig
    package let stage: ScanStage
    package let plugins: PluginRunner
    /// Seconds since the epoch: the verdict's time and the queue-lifetime test.
    package let clock: @Sendable () -> Double

    package init(config: PosternConfig, stage: ScanStage, plugins: PluginRunner? = nil,
                 clock: @escaping @Sendable () -> Double = { WallClock.seconds }) {
        self.config = config
        self.stage = stage
        self.plugins = plugins ?? { [engine = ScanEngine(config: config)] in engine.run($0, on: $1, deadline: $2) }
        self.clock = clock
    }

    package struct Outcome {
        package var verdict: Verdict
        /// What end of data means for each recipient, envelope order (before queue): its
        /// outcome (``RecipientFate/outcome(id:reason:)``) is what scannerd sends receiverd.
        package var fates: [RecipientFate]
        /// Why, for a refusal.
        package var text: String
        /// After queue: a tempfail; nothing is written and the message is scanned again later.
        package var retry: Bool
        package var decisions: [RecipientDecision]
        package var findings: [Finding]

        /// Each recipient's end-of-data reply code: 250, 550 or 451.
        package var codes: [Int] { StageScan.codes(fates) }
    }

    package func run(file: SpoolFile, message: StoredMessage, deadline: ContinuousClock.Instant) throws(SpoolError) -> Outcome {
        try run(envelope: file.envelope, previous: file.verdict, message: message, deadline: deadline)
    }

    /// The algorithm: who is still open, which plug-ins each of them gets, what they found,
    /// what that means per recipient, the replies, and the verdict to write.
    /// Throws when the message cannot be read: its head, for header rules, or what a plug-in
    /// asked for. Then no verdict stands: a local failure to read is not the message's fault.
    package func run(envelope e: Envelope, previous: Verdict?, message: StoredMessage, deadline: ContinuousClock.Instant) throws(SpoolError) -> Outcome {
        var scan = Context(config: config, stage: stage, envelope: e, previous: previous,
                           headers: config.rules.usesHeaders ? try message.headerFields() : nil)
        let limits = scan.engine.sizeLimits(for: e, recipients: scan.open, lists: scan.lists, headers: scan.headers)
        let findings = runPlugins(scan.filterNames, envelope: e, message: message, sizeLimits: limits, deadline: deadline)
        if let failure = message.readFailure { throw failure }
        scan.decide(findings)
        let replies = settle(scan)
        var verdict = scan.verdictBase(now: clock(), findings: findings)
        scan.addRecipientHeaders(to: &verdict, replies: replies, findings: findings)
        scan.addReasons(to: &verdict, replies: replies)
        var tls = verdict.recipientTLS
        verdict.routes = scan.routes(replies: replies, tls: &tls)
        verdict.recipientTLS = tls
        verdict.afterQueuePending = scan.afterQueuePending(replies: replies)
        verdict.action = StageScan.summary(verdict.routes.map(\.status), codes: stage == .beforeQueue ? StageScan.codes(replies.fates) : [])
        return Outcome(verdict: verdict, fates: replies.fates, text: replies.reason(scan.decisions), retry: replies.retry,
                       decisions: scan.decisions, findings: findings)
    }

    /// Mail that already passed a Postern (valid loop guard) and Postern's own mail are not scanned.
    private func runPlugins(_ names: [String], envelope e: Envelope, message: StoredMessage, sizeLimits: [String: Int],
                            deadline: ContinuousClock.Instant) -> [Finding] {
        guard !e.guardValid && e.receivedWith != "local" && !names.isEmpty else { return [] }
        var request = ScanRequest(queueID: e.id, message: message, mailFrom: e.mailFrom, recipients: e.recipients.map(\.address),
                                  clientIP: StageScan.clientAddress(e), helo: e.xforward["HELO"] ?? e.helo)
        request.sizeLimits = sizeLimits
        return plugins(names, request, deadline)
    }

    /// The end-of-data reply code of each fate, from the one reply table (without SoftBounce,
    /// which is receiverd's).
    package static func codes(_ fates: [RecipientFate]) -> [Int] {
        let table = ReplyTable(hostname: "")
        return fates.map { table.reply($0.outcome(id: "", reason: "")).code }
    }

    /// One word for logs and `queue show`.
    package static func summary(_ statuses: [RecipientStatus], codes: [Int]) -> VerdictAction {
        if !codes.isEmpty && codes.allSatisfy({ $0 == 451 }) { return .tempfail }
        if !codes.isEmpty && codes.allSatisfy({ $0 == 550 }) { return .reject }
        let kinds = Set(statuses.map(\.rawValue))
        switch kinds {
        case [RecipientStatus.pending.rawValue]: return .pass
        case [RecipientStatus.blocked.rawValue]: return .reject
        case [RecipientStatus.dropped.rawValue]: return codes.contains(550) || codes.contains(451) ? .reject : .discard
        default: return .split
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
