import NIOCore

extension DeliveryReport {
    /// The failures of one message that one DSN reports, gathered route by route, and the DSN
    /// written from them: the one place where scannerd (recipients blocked after the message
    /// was accepted) and senderd (refused or expired recipients) build their reports.
    public struct Batch: Sendable {
        public let original: Envelope
        /// Each reported failure with the route it is for.
        public private(set) var entries: [(route: Int, failure: Failure)] = []

        public init(original: Envelope) { self.original = original }

        public var isEmpty: Bool { entries.isEmpty }
        public var failures: [Failure] { entries.map(\.failure) }
        public var routes: [Int] { entries.map(\.route) }

        /// Adds the failure of `recipient` (an index into the envelope's recipients) on
        /// `route`, unless its NOTIFY or the null sender says nobody wants a report.
        public mutating func add(route: Int, recipient: Int, status: String, diagnostic: String, remote: String) {
            let rcpt = original.recipients[recipient]
            guard DeliveryReport.wanted(for: rcpt, sender: original.mailFrom) else { return }
            entries.append((route, Failure(recipient: rcpt, status: status, diagnostic: diagnostic, remote: remote)))
        }

        /// Writes the DSN into `scan/`, durable before the caller records the failures; its
        /// queue id. `headersOnly` returns only the original's header section. Blocking.
        public func write(message: ByteBuffer, hostname: String, layout: SpoolLayout, headersOnly: Bool) throws -> String {
            try LocalMessage.writeReport(original: original, failures: failures, message: message, hostname: hostname,
                                         layout: layout, headersOnly: headersOnly)
        }
    }
}
