import PosternPolicy
import PosternSMTP
import PosternSpool

/// What one delivery attempt of a message came to, route by route: the statuses to record,
/// the routes still pending, each route's last error, and the DSNs owed — failures, delays
/// past `[Sender] DelayWarningTime` (once per route), and successes that a next hop without
/// DSN cannot report (RFC 3461 §5.2.2).
struct AttemptTally: Sendable {
    var statuses: [(route: Int, status: RecipientStatus)] = []
    var stillPending = 0
    /// The reports owed, one per kind (RFC 3464 action).
    var reports: [DeliveryReport.Action: DeliveryReport.Batch] = [:]
    /// Each route's last error, kept in the file for `posternctl queue list`.
    var errors: [Int: DeliveryError]
    /// Routes whose delay DSN was written, kept in the file so that it goes out once.
    var warned: [Int: Double]
    let original: Envelope
    /// The end of the attempt, seconds since the epoch.
    let now: Double
    /// Past `MaxQueueLifetime`: a temporary failure is final.
    let expired: Bool
    /// When the message will be given up: a delay DSN's `Will-Retry-Until`.
    let retryUntil: Double
    /// Whether the message is old enough for a delay DSN (`DelayWarningTime` set and passed).
    let warnOfDelay: Bool
    /// Next hops by route text: recipients mostly share their route.
    private var hops: [String: (host: String?, lmtp: Bool)] = [:]

    /// An attempt on `original` that ended at `now`, with the errors and warnings its file
    /// kept from earlier attempts.
    init(original: Envelope, errors: [Int: DeliveryError], warned: [Int: Double], sender: SenderSection, now: Double) {
        let age = now - original.arrival
        let lifetime = Double(sender.maxQueueLifetime.components.seconds)
        let warnAfter = Double(sender.delayWarningTime.components.seconds)
        self.errors = errors
        self.warned = warned
        self.original = original
        self.now = now
        expired = age > lifetime
        retryUntil = original.arrival + lifetime
        warnOfDelay = warnAfter > 0 && age >= warnAfter
    }

    /// Records the outcome of pending route `k`.
    mutating func add(route k: Int, _ r: Verdict.Route, outcome: RecipientOutcome) {
        if case .delivered = outcome { errors[k] = nil } else { errors[k] = DeliveryError(time: now, text: outcome.text) }
        let hop = hops[r.endpoint] ?? Self.nextHop(r.endpoint)
        hops[r.endpoint] = hop
        switch outcome {
        case .delivered(let reply, let nextHopReports):
            statuses.append((k, .delivered))
            if !nextHopReports {
                // LMTP is the mailbox itself: there the message is delivered, not relayed.
                report(hop.lmtp ? .delivered : .relayed, route: k, recipient: r.recipient,
                       status: reply.status.map { "\($0)" } ?? "2.0.0", diagnostic: reply.description, remote: hop.host)
            }
        case .failed(let reply):
            statuses.append((k, .failed))
            report(.failed, route: k, recipient: r.recipient, status: reply.status.map { "\($0)" } ?? "5.0.0",
                   diagnostic: reply.description, remote: hop.host)
        case .deferred(let why) where expired:
            statuses.append((k, .failed))
            report(.failed, route: k, recipient: r.recipient, status: "4.4.7", diagnostic: "delivery time expired: \(why)",
                   remote: hop.host)
        case .deferred(let why):
            stillPending += 1
            if warnOfDelay && warned[k] == nil {
                report(.delayed, route: k, recipient: r.recipient, status: EnhancedStatus.first(in: why) ?? "4.0.0",
                       diagnostic: why, remote: hop.host)
            }
        }
    }

    /// Adds a recipient to the report of its kind, when its NOTIFY asks for one.
    private mutating func report(_ action: DeliveryReport.Action, route: Int, recipient: Int, status: String,
                                 diagnostic: String, remote: String?) {
        let fresh = DeliveryReport.Batch(original: original, action: action,
                                         retryUntil: action == .delayed ? retryUntil : nil)
        reports[action, default: fresh].add(route: route, recipient: recipient, status: status,
                                            diagnostic: diagnostic, remote: remote)
    }

    /// A route's next hop as a report names it: its host (`Remote-MTA: dns; host`; none for a
    /// unix socket or a damaged route) and whether it speaks LMTP.
    static func nextHop(_ route: String) -> (host: String?, lmtp: Bool) {
        guard let endpoint = try? Endpoint.parse(route) else { return (nil, false) }
        guard case .inet(let host, _) = endpoint.location else { return (nil, endpoint.mailProtocol == .lmtp) }
        return (host, endpoint.mailProtocol == .lmtp)
    }
}
