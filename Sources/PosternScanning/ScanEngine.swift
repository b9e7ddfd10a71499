import PosternPolicy
import PosternSMTP
import PosternSpool
/// Runs plug-ins and turns their findings into per-recipient decisions through the rules.
///
/// Findings are taken in filter-list order: a verdict's action list is looked up (rules first,
/// then the plug-in section's default); its extras are collected; a main action other than
/// `continue` decides for that recipient and ends the walk. `pass` there is an explicit
/// allow (later findings are ignored); `continue` defers to the next finding.
/// - SeeAlso: `docs/plugins.md`, DESIGN.md §4–§5
public struct ScanEngine: Sendable {
    public let config: PosternConfig

    public init(config: PosternConfig) { self.config = config }

    /// The plug-ins of `stage` for one recipient: a rule may set the list per recipient.
    public func filters(_ stage: ScanStage, for e: Envelope, recipient: Int, headers: [HeaderField]?) -> [String] {
        let context = ruleContext(e, recipient, headers)
        if let setting = config.rules.setting(for: stage.parameter, in: context), case .list(let names) = setting.typed {
            return names.filter { config.plugins[$0] != nil }
        }
        return stage == .beforeQueue ? config.scanner.beforeQueueFilters : config.scanner.afterQueueFilters
    }

    /// Both lists, before-queue first, each plug-in once: what a message gets that never had a
    /// before-queue scan, and what `rules test` shows.
    public func allFilters(for e: Envelope, recipient: Int, headers: [HeaderField]?) -> [String] {
        let before = filters(.beforeQueue, for: e, recipient: recipient, headers: headers)
        return before + filters(.afterQueue, for: e, recipient: recipient, headers: headers).filter { !before.contains($0) }
    }

    /// Runs `names` at once, each on a thread of its own (they wait on sockets; a CPU-sized
    /// pool would run them one after another), each within its timeout and `deadline`.
    /// Never throws: a failure is an `error` finding.
    public func run(_ names: [String], on request: ScanRequest, deadline: ContinuousClock.Instant) -> [Finding] {
        let sections = names.compactMap { config.plugins[$0] }
        guard sections.count > 1 else { return sections.map { ScanEngine.runOne($0, request, deadline: deadline) } }
        let results = FindingSlots(count: sections.count)
        let threads = sections.indices.dropFirst().map { i in
            PluginThread { results.set(i, ScanEngine.runOne(sections[i], request, deadline: deadline)) }
        }
        results.set(0, ScanEngine.runOne(sections[0], request, deadline: deadline))
        for thread in threads { thread.join() }
        return results.all
    }

    package static func runOne(_ section: PluginSection, _ request: ScanRequest, deadline: ContinuousClock.Instant) -> Finding {
        let plugin = section.plugin
        let limit = request.sizeLimits[section.name] ?? plugin.maxSize
        guard request.message.count <= limit else { return skipped(section, size: request.message.count, limit: limit) }
        let own = ContinuousClock.now + section.timeout
        do {
            return try plugin.scan(request, deadline: min(own, deadline))
        } catch {
            return Finding(plugin: plugin.name, verdict: .error, detail: "error: \(error.message)")
        }
    }

    /// The finding of a plug-in that a message of `size` octets skips: larger than `limit`.
    private static func skipped(_ section: PluginSection, size: Int, limit: Int) -> Finding {
        Finding(plugin: section.name, verdict: .skipped,
                headers: ["X-Postern-Skipped: \(section.displayName); message size \(size) > MaxSize \(limit)"],
                detail: "skipped: message larger than MaxSize (\(limit) bytes)")
    }

    /// `plugin/MaxSize` for each recipient in `recipients` whose list (in `lists`, same order)
    /// has the plug-in: the largest, by plug-in, where a rule sets one (a plug-in runs once for
    /// a message; ``decide(_:filters:envelope:recipient:headers:baseScore:)`` skips it again
    /// for the recipients whose own limit the message exceeds).
    public func sizeLimits(for e: Envelope, recipients: [Int], lists: [[String]], headers: [HeaderField]?) -> [String: Int] {
        var limits: [String: Int] = [:]
        for (i, list) in zip(recipients, lists) {
            for name in list {
                guard let section = config.plugins[name] else { continue }
                let limit = maxSize(section, for: e, recipient: i, headers: headers)
                limits[name] = max(limits[name] ?? limit, limit)
            }
        }
        return limits.filter { name, limit in limit != config.plugins[name]?.plugin.maxSize }
    }

    private func maxSize(_ section: PluginSection, for e: Envelope, recipient i: Int, headers: [HeaderField]?) -> Int {
        guard case .size(let n)? = resolver.setting(section.name + "/MaxSize", for: e, recipient: i, headers: headers) else {
            return section.plugin.maxSize
        }
        return n
    }

    /// A finding as recipient `i` sees it: skipped when the message exceeds its own `MaxSize`,
    /// a spam score judged by its own thresholds. `block:` and `score:` terms do not apply to
    /// these settings (they would depend on the judgement they make).
    private func judged(_ finding: Finding, for e: Envelope, recipient i: Int, headers: [HeaderField]?) -> Finding {
        guard let section = config.plugins[finding.plugin] else { return finding }
        let limit = maxSize(section, for: e, recipient: i, headers: headers)
        if finding.verdict != .skipped && e.size > limit { return Self.skipped(section, size: e.size, limit: limit) }
        guard var spam = finding.spam else { return finding }
        let own = resolver.setting(section.name + "/SpamThreshold", for: e, recipient: i, headers: headers)
        let unconditional = resolver.setting(section.name + "/UnconditionalSpamThreshold", for: e, recipient: i, headers: headers)
        guard own != nil || unconditional != nil else { return finding }
        if case .number(let n)? = own { spam.threshold = n }
        if case .number(let n)? = unconditional { spam.unconditionalThreshold = n }
        return spam.finding(plugin: finding.plugin)
    }

    /// Decides for one recipient from the findings of the plug-ins in `filters` (in that order).
    public func decide(_ findings: [Finding], filters: [String], envelope e: Envelope, recipient: Int,
                       headers: [HeaderField]?, baseScore: Double = 0) -> RecipientDecision {
        let mine = filters.compactMap { name in findings.first { $0.plugin == name } }
            .map { judged($0, for: e, recipient: recipient, headers: headers) }
        var context = ruleContext(e, recipient, headers)
        context.blocks = mine.flatMap(\.names)
        context.score = mine.reduce(baseScore) { $0 + ($1.score ?? 0) }
        var decision = RecipientDecision(recipient: recipient, main: .pass, extras: [], reasons: [], score: context.score!,
                                         blocks: context.blocks ?? [], steps: [], findings: mine)
        for finding in mine where finding.isBlocking {
            let (parameter, fallback, source) = defaultActions(for: finding)
            var actions = fallback
            var from = source
            if let setting = config.rules.setting(for: parameter, in: context), case .actions(let list) = setting.typed {
                actions = list
                from = "rule" + (setting.group.map { " group \($0)" } ?? "")
            }
            decision.steps.append(.init(parameter: parameter, actions: actions, source: from))
            decision.reasons.append(finding.reason)
            for extra in actions.extras where !decision.extras.contains(extra) {
                decision.extras.append(extra)
                if case .score(let n) = extra {
                    context.score! += n
                    decision.score = context.score!
                }
            }
            if actions.main != .continue {
                decision.main = actions.main
                break
            }
        }
        return decision
    }

    /// A yes/no parameter (`ReturnReject`, `SkipDSNOnBlock`) for one recipient; after a scan,
    /// `block:` and `score:` terms see what `scanned` saw.
    public func flag(_ parameter: String, for e: Envelope, recipient: Int, headers: [HeaderField]?,
                     scanned: RecipientDecision? = nil, default value: Bool) -> Bool {
        RouteResolver(config: config).flag(parameter, for: e, recipient: recipient, headers: headers,
                                           blocks: scanned?.blocks, score: scanned?.score, default: value)
    }

    private var resolver: RouteResolver { RouteResolver(config: config) }

    private func ruleContext(_ e: Envelope, _ recipient: Int, _ headers: [HeaderField]?) -> RuleContext {
        resolver.context(for: e, recipient: recipient, headers: headers)
    }

    private func defaultActions(for finding: Finding) -> (String, ActionList, String) {
        if finding.verdict == .error {
            return ("ProcessingErrors", config.receiver.processingErrorsActions, "[Receiver] ProcessingErrors")
        }
        let section = config.plugins[finding.plugin]!
        // A verdict without a configured default is a block: refusing is safe, passing is not.
        let verdict = finding.verdict.rawValue
        return (section.parameter(for: verdict), section.actions[verdict] ?? ActionList(main: .reject),
                "[\(section.displayName)] \(PluginSection.key(for: verdict))")
    }
}
