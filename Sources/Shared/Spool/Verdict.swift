/// Delivery state of one recipient, stored as one character that senderd overwrites in place.
public enum RecipientStatus: UInt8, Sendable {
    case pending = 0x50    // "P"
    case delivered = 0x44  // "D"
    case failed = 0x46     // "F": refused by the next hop (5xx) or expired
    case dropped = 0x58    // "X": not to be delivered (discard, reject after queue)
}

/// What scannerd decided, appended after the envelope: the verdict and one route per recipient.
public struct Verdict: Sendable, Hashable {
    public struct Route: Sendable, Hashable {
        public var recipient: Int
        public var status: RecipientStatus
        /// The resolved `SenderAddress`, macros substituted.
        public var endpoint: String
        public init(recipient: Int, status: RecipientStatus = .pending, endpoint: String) {
            self.recipient = recipient
            self.status = status
            self.endpoint = endpoint
        }
    }

    public var scanned: Double
    public var action: String
    public var routes: [Route]
    /// Header fields to add, already sanitised, `Name: value`.
    public var addHeaders: [String]
    /// Delivery attempts so far; fixed width so senderd updates it in place.
    public var attempts: Int

    public init(scanned: Double, action: String = "pass", routes: [Route] = [], addHeaders: [String] = [], attempts: Int = 0) {
        self.scanned = scanned
        self.action = action
        self.routes = routes
        self.addHeaders = addHeaders
        self.attempts = attempts
    }

    /// Width of the attempts counter.
    static let attemptsWidth = 6

    public func write() -> String {
        var s = "scanned \(scanned)\nverdict \(SpoolText.clean(action))\n"
        for h in addHeaders { s += "add-header \(SpoolText.clean(h))\n" }
        for r in routes {
            s += "route \(Character(Unicode.Scalar(r.status.rawValue))) \(r.recipient) \(SpoolText.clean(r.endpoint))\n"
        }
        let a = String(min(max(attempts, 0), 999_999))
        s += "attempts " + String(repeating: "0", count: Verdict.attemptsWidth - a.count) + a + "\n"
        s += "end verdict\n"
        return s
    }
}

