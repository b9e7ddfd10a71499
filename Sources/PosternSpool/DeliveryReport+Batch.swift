import NIOCore

extension DeliveryReport {
    /// The recipients of one message that one DSN reports, gathered route by route, and the
    /// DSN written from them: the one place where scannerd (recipients blocked after the
    /// message was accepted) and senderd (refused, expired, delayed or relayed recipients)
    /// build their reports.
    public struct Batch: Sendable {
        public let original: Envelope
        public let action: Action
        /// For `delayed`: when the message will be given up (`Will-Retry-Until`), seconds
        /// since the epoch.
        public let retryUntil: Double?
        /// Each reported recipient with the route it is for.
        public private(set) var entries: [(route: Int, entry: Entry)] = []

        public init(original: Envelope, action: Action = .failed, retryUntil: Double? = nil) {
            self.original = original
            self.action = action
            self.retryUntil = retryUntil
        }

        public var isEmpty: Bool { entries.isEmpty }
        public var reported: [Entry] { entries.map(\.entry) }
        public var routes: [Int] { entries.map(\.route) }

        /// Adds `recipient` (an index into the envelope's recipients) on `route`, unless its
        /// NOTIFY or the null sender says nobody wants this kind of report.
        public mutating func add(route: Int, recipient: Int, status: String, diagnostic: String, remote: String?) {
            let rcpt = original.recipients[recipient]
            guard DeliveryReport.wanted(action, for: rcpt, sender: original.mailFrom) else { return }
            entries.append((route, Entry(recipient: rcpt, status: status, diagnostic: diagnostic, remote: remote)))
        }

        /// Writes the DSN into `scan/`, durable before the caller records what it reports; its
        /// queue id. `headersOnlyBecause` returns only the original's header section and says
        /// why. The original, `messageSize` octets, is read by `read` (its first n octets) only
        /// as far as the report returns it. Blocking.
        public func write(messageSize: Int, reading read: (Int) throws -> ByteBuffer, hostname: String, layout: SpoolLayout,
                          headersOnlyBecause: String? = nil) throws -> String {
            try LocalMessage.writeReport(self, messageSize: messageSize, reading: read, hostname: hostname, layout: layout,
                                         headersOnlyBecause: headersOnlyBecause)
        }
    }
}
