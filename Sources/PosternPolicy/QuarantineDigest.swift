import Glibc
import PosternMIME
import PosternSMTP
import PosternSpool
import PosternUtil

/// `posternctl quarantine digest`: one notice per recipient listing what was quarantined for
/// them (the blocked recipients of each entry) and not listed in an earlier digest, from
/// `quarantine-digest.txt`; with a release address under each message offered for release.
/// - SeeAlso: docs/configuration.md (Quarantine digest)
public struct QuarantineDigest {
    /// A quarantine entry as read.
    public struct Entry {
        public var id: String
        public var file: SpoolFile
        public var headers: [HeaderField]
        public init(id: String, file: SpoolFile, headers: [HeaderField]) {
            self.id = id
            self.file = file
            self.headers = headers
        }
    }

    /// One recipient's digest.
    public struct Notice {
        public var id: String
        public var from: String
        public var to: String
        public var text: String
        /// The entries it lists, as ``QuarantineDigest/key(_:_:)`` keys for the state file.
        public var listed: [String]
    }

    public let config: PosternConfig
    public let template: NotificationTemplate
    /// Makes release tokens; nil: no release addresses (no `[Quarantine] ReleaseAddress`).
    public var tokens: ReleaseToken?
    public var now: time_t = time(nil)
    public var makeID: () -> String = { QueueID.make() }

    public init(config: PosternConfig, template: NotificationTemplate, tokens: ReleaseToken?) {
        self.config = config
        self.template = template
        self.tokens = tokens
    }

    /// What the state file records: entry and recipient, one line each.
    public static func key(_ id: String, _ recipient: String) -> String { "\(id) \(ASCII.lowercased(recipient))" }

    /// The digests owed for `entries` (oldest first), leaving out what `listed` has.
    public func notices(_ entries: [Entry], listed: Set<String>) -> [Notice] {
        let resolver = RouteResolver(config: config)
        var items: [String: [(entry: Entry, recipient: Int)]] = [:]
        var order: [String] = []
        for entry in entries {
            let e = entry.file.envelope
            // Recipients who have had their copy (released: "D") are not listed.
            for i in Set((entry.file.verdict?.routes ?? []).filter { $0.status == .pending }.map(\.recipient)).sorted() {
                let address = e.recipients[i].address
                let lowered = ASCII.lowercased(address)
                // Never to an empty address, to Postern itself, or to the release address.
                guard !address.isEmpty, !listed.contains(Self.key(entry.id, address)),
                      lowered != ASCII.lowercased(resolver.filterMail(for: e, recipient: i, headers: entry.headers)),
                      config.quarantine.releaseAddress.flatMap({ ReleaseToken.token(in: address, releaseAddress: $0) }) == nil
                else { continue }
                if items[lowered] == nil { order.append(lowered) }
                items[lowered, default: []].append((entry, i))
            }
        }
        return order.map { lowered in
            let group = items[lowered]!
            let (first, i) = group[0]
            let to = first.file.envelope.recipients[i].address
            let from = resolver.filterMail(for: first.file.envelope, recipient: i, headers: first.headers)
            let id = makeID()
            let values: [TemplateMacro: String] = [
                .postmaster: resolver.adminMail(for: first.file.envelope, recipient: i, headers: first.headers),
                .filterMail: from, .hostname: config.general.hostname, .to: to,
                .digest: group.map { item($0.entry, recipient: $0.recipient) }.joined(separator: "\r\n\r\n"),
            ]
            let text = template.write(values, date: now, messageID: "<\(id)@\(config.general.hostname)>")
            return Notice(id: id, from: from, to: to, text: text, listed: group.map { Self.key($0.entry.id, to) })
        }
    }

    /// One message in the list: subject, sender, arrival, why, reference, release address.
    private func item(_ entry: Entry, recipient i: Int) -> String {
        func field(_ name: String) -> String {
            let raw = entry.headers.first { ASCII.lowercased($0.name) == name }?.value ?? ""
            return ASCII.oneLine(String(decoding: EncodedWord.decode(raw).utf8.prefix(200), as: UTF8.self), with: " ")
        }
        let e = entry.file.envelope
        var lines = [
            "* \(field("subject").isEmpty ? "(no subject)" : field("subject"))",
            "    From:      \(field("from").isEmpty ? "<\(e.mailFrom)>" : field("from"))",
            "    Arrived:   \(Timestamp.format(time_t(e.arrival), Timestamp.rfc5322))",
            "    Why:       \(ASCII.oneLine(entry.file.verdict?.reasons[i] ?? "", with: " "))",
            "    Reference: \(entry.id)",
        ]
        if let tokens, let address = config.quarantine.releaseAddress, entry.file.verdict?.releaseOffered.contains(i) == true {
            let lifetime = config.quarantine.releaseLifetime
            let token = tokens.make(id: entry.id, recipient: e.recipients[i].address, lifetime: lifetime)
            let until = Timestamp.format(now + time_t(lifetime.components.seconds), Timestamp.rfc5322)
            lines.append("    Release:   \(ReleaseToken.address(address, token: token)) (until \(until))")
        }
        return lines.map { ASCII.oneLine($0, with: " ") }.joined(separator: "\r\n")
    }
}
