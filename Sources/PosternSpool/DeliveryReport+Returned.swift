extension DeliveryReport {
    /// What of the original a report carries, and the sentence that says so: the whole
    /// message only in a failure report, and only when nothing speaks against it (RFC 3461
    /// §4.3: RET is for failed DSNs; delay and success reports return the header section, as
    /// Postfix's do).
    struct Returned {
        var headersOnly: Bool
        var sentence: String

        init(_ action: Action, envelope e: Envelope, size: Int, forced: String?) {
            let why: String? = if action != .failed {
                "a report of this kind never returns the whole message"
            } else if let forced {
                forced
            } else if e.mailParameters["RET"]?.uppercased() == "HDRS" {
                "you asked for the headers only (RET=HDRS)"
            } else if size > DeliveryReport.fullMessageLimit {
                "the message is larger than \(DeliveryReport.fullMessageLimit) octets"
            } else {
                nil
            }
            headersOnly = why != nil
            sentence = why.map { "Only the header section of your message is attached below: \($0)." }
                ?? "Your message is attached below."
        }
    }
}
