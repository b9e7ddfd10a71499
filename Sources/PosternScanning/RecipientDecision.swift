import PosternPolicy
/// Which filter list a scan runs: `BeforeQueueFilters` while the MTA waits, or
/// `AfterQueueFilters` once the message is queued.
public enum ScanStage: String, Sendable {
    case beforeQueue = "before-queue"
    case afterQueue = "after-queue"

    /// The rule parameter (and `[Scanner]` key) that lists the stage's plug-ins.
    public var parameter: String { self == .beforeQueue ? "BeforeQueueFilters" : "AfterQueueFilters" }
}

/// What was decided for one recipient.
public struct RecipientDecision: Sendable, Hashable {
    /// Index into the envelope's recipients.
    public var recipient: Int
    /// `pass`, `reject`, `tempfail` or `discard` (a list ending in `continue` everywhere is `pass`).
    public var main: MainAction
    /// Every extra action of the lists that applied, in order, without repeats.
    public var extras: [ExtraAction]
    /// The findings that decided, for logs, DSNs and the quarantine (`clamav: infected: Eicar`).
    public var reasons: [String]
    /// The unified score: the plug-ins' scores plus every `score(N)`.
    public var score: Double
    /// Threat and banned-object names of this recipient's plug-ins.
    public var blocks: [String]
    /// For `rules test`: each action parameter looked up, its value and where it came from.
    public var steps: [Step]
    /// The findings of this recipient's plug-ins as it sees them (its own `MaxSize` and spam
    /// thresholds), filter-list order: their header fields are its copy's.
    public var findings: [Finding] = []

    public struct Step: Sendable, Hashable {
        public var parameter: String
        public var actions: ActionList
        /// `rule at line N` or `[Section] default`.
        public var source: String
    }
}
