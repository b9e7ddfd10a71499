import PosternSMTP
/// Delivery state of one recipient, stored as one character that senderd overwrites in place.
public enum RecipientStatus: UInt8, Sendable {
    case pending = 0x50    // "P"
    case delivered = 0x44  // "D"
    case failed = 0x46     // "F": refused by the next hop (5xx) or expired
    case dropped = 0x58    // "X": not to be delivered (discarded, refused to the client, or reported)
    case blocked = 0x42    // "B": blocked by a scan and accepted: a DSN is owed, then "X"
}

/// What scannerd decided, appended after the envelope: the verdict and one route per recipient.
public struct Verdict: Sendable, Hashable {
    public struct Route: Sendable, Hashable {
        public var recipient: Int
        public var status: RecipientStatus
        /// The resolved `SenderAddress`, macros substituted.
        public var endpoint: String
        /// `redirect(…)`: deliver to this address instead of the recipient's own.
        public var address: String?
        public init(recipient: Int, status: RecipientStatus = .pending, endpoint: String, address: String? = nil) {
            self.recipient = recipient
            self.status = status
            self.endpoint = endpoint
            self.address = address
        }
    }

    public var scanned: Double
    public var action: VerdictAction
    public var routes: [Route]
    /// Header fields to add, already sanitised, `Name: value`.
    public var addHeaders: [String]
    /// Delivery attempts so far; fixed width so senderd updates it in place.
    public var attempts: Int
    /// Written after the before-queue scan when after-queue filters still have to run.
    public var afterQueuePending: Bool = false
    /// The unified score so far.
    public var score: Double = 0
    /// One line per plug-in finding (`clamav infected: Eicar-Test-Signature`), for admins.
    public var findings: [String] = []
    /// Why a recipient was blocked, by recipient index: the text of its DSN and quarantine entry.
    public var reasons: [Int: String] = [:]
    /// Header fields only one recipient's copy gets (its own `add-header(…)` actions), by
    /// recipient index, after `addHeaders`.
    public var recipientHeaders: [Int: [String]] = [:]
    /// The TLS policy a rule (`SenderTLS`) chose for a recipient's route, by recipient index;
    /// absent means `[Sender] TLS` as configured when senderd delivers.
    public var recipientTLS: [Int: TLSPolicy] = [:]

    public init(scanned: Double, action: VerdictAction = .pass, routes: [Route] = [], addHeaders: [String] = [], attempts: Int = 0) {
        self.scanned = scanned
        self.action = action
        self.routes = routes
        self.addHeaders = addHeaders
        self.attempts = attempts
    }

    /// Whether senderd may take the message: no after-queue scan and no DSN for a block owed.
    public var readyForDelivery: Bool {
        !afterQueuePending && !routes.contains { $0.status == .blocked }
    }

    /// Width of the attempts counter.
    package static let attemptsWidth = 6

    public func write() -> String {
        var s = "scanned \(scanned)\nverdict \(SpoolText.clean(action.description))\n"
        if afterQueuePending { s += "pending after-queue\n" }
        if score != 0 { s += "score \(score)\n" }
        for f in findings { s += "finding \(SpoolText.clean(f))\n" }
        for (i, r) in reasons.sorted(by: { $0.key < $1.key }) { s += "reason \(i) \(SpoolText.clean(r))\n" }
        for h in addHeaders { s += "add-header \(SpoolText.clean(h))\n" }
        for (i, headers) in recipientHeaders.sorted(by: { $0.key < $1.key }) {
            for h in headers { s += "rcpt-header \(i) \(SpoolText.clean(h))\n" }
        }
        for (i, policy) in recipientTLS.sorted(by: { $0.key < $1.key }) { s += "rcpt-tls \(i) \(policy)\n" }
        for r in routes {
            let to = r.address.map { " to=" + SpoolText.clean($0) } ?? ""
            s += "route \(Character(Unicode.Scalar(r.status.rawValue))) \(r.recipient) \(SpoolText.clean(r.endpoint))\(to)\n"
        }
        let a = String(min(max(attempts, 0), 999_999))
        s += "attempts " + String(repeating: "0", count: Verdict.attemptsWidth - a.count) + a + "\n"
        s += "end verdict\n"
        return s
    }
}

