import PosternSMTP
import PosternSpool

/// Who a notification goes to (`Notify`): the administrator (`AdminMail`), the envelope
/// sender, the recipient it is about.
public enum NotifyParty: String, Sendable, CaseIterable {
    case admin, sender, recipients
}

/// The parameters besides the route that rules may set per recipient, each falling back to
/// its section's value when no rule sets it.
extension RouteResolver {
    /// What the rules give `parameter` for recipient `i`, nil when none sets it; after a scan,
    /// `blocks` and `score` let `block:` and `score:` terms apply.
    public func setting(_ parameter: String, for e: Envelope, recipient i: Int, headers: [HeaderField]?,
                        blocks: [String]? = nil, score: Double? = nil) -> ParameterValue? {
        var context = context(for: e, recipient: i, headers: headers)
        context.blocks = blocks
        context.score = score
        return config.rules.setting(for: parameter, in: context)?.typed
    }

    /// `AdminMail` for recipient `i`.
    public func adminMail(for e: Envelope, recipient i: Int, headers: [HeaderField]?,
                          blocks: [String]? = nil, score: Double? = nil) -> String {
        guard case .text(let address)? = setting("AdminMail", for: e, recipient: i, headers: headers, blocks: blocks, score: score) else {
            return config.notifier.adminMail
        }
        return address
    }

    /// `FilterMail` for recipient `i`.
    public func filterMail(for e: Envelope, recipient i: Int, headers: [HeaderField]?,
                           blocks: [String]? = nil, score: Double? = nil) -> String {
        guard case .text(let address)? = setting("FilterMail", for: e, recipient: i, headers: headers, blocks: blocks, score: score) else {
            return config.notifier.filterMail
        }
        return address
    }

    /// `Notify` for recipient `i`: who hears of a `notify` action taken for it.
    public func notify(for e: Envelope, recipient i: Int, headers: [HeaderField]?,
                       blocks: [String]? = nil, score: Double? = nil) -> [NotifyParty] {
        guard case .list(let words)? = setting("Notify", for: e, recipient: i, headers: headers, blocks: blocks, score: score) else {
            return config.notifier.notify
        }
        return words.compactMap(NotifyParty.init(rawValue:))
    }

    /// How long one scan of a message may take: the shortest `ScanTimeout` of `recipients`
    /// (one scan serves them all, and before the queue one reply answers them all, so the
    /// strictest limit holds). `block:` and `score:` terms do not apply: nothing is scanned yet.
    public func scanTimeout(for e: Envelope, recipients: some Sequence<Int>, headers: [HeaderField]?) -> Duration {
        let limits = recipients.map { i -> Duration in
            guard case .duration(let d)? = setting("ScanTimeout", for: e, recipient: i, headers: headers) else { return config.scanner.scanTimeout }
            return d
        }
        return limits.min() ?? config.scanner.scanTimeout
    }
}
