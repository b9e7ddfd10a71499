import Glibc
import Logging
import NIOConcurrencyHelpers
import PosternPolicy
import PosternScanning
import PosternSpool
import PosternUtil

/// Release by reply: a recipient's notice names `quarantine-release+TOKEN@…` (`[Quarantine]
/// ReleaseAddress` with a ``ReleaseToken``); the MTA passes the reply through Postern like any
/// mail, and scannerd, seeing the release address among the recipients, releases the copy to
/// that recipient and drops the reply for that address instead of delivering it.
/// - SeeAlso: docs/postfix.md (Quarantine release by reply)
extension ScanService {
    /// The `$RELEASE$` address of each recipient that `decisions` offer release to; nil when
    /// the key cannot be read (logged; the notices then go without it).
    func releaseAddresses(for quarantined: String, offered decisions: [RecipientDecision], envelope e: Envelope,
                          releaseAddress: String, log: Logger) -> ((String) -> String)? {
        let q = config.quarantine
        let tokens: ReleaseToken
        do {
            tokens = ReleaseToken(key: try releaseKeys.key(secret: q.releaseSecret, layout: layout))
        } catch {
            log.error("cannot read the release key, notices go without a release address: \(error)")
            return nil
        }
        let offered = Set(decisions.filter { $0.main != .pass && $0.main != .continue && $0.extras.contains(.quarantine)
            && Notification.event(of: $0) == .quarantine }.map { ASCII.lowercased(e.recipients[$0.recipient].address) })
        return { recipient in
            guard offered.contains(ASCII.lowercased(recipient)) else { return "" }
            return ReleaseToken.address(releaseAddress, token: tokens.make(id: quarantined, recipient: recipient, lifetime: q.releaseLifetime))
        }
    }

    /// Acts on the routes of `file` that go to the release address: each is a release request,
    /// decided and logged, and dropped (never delivered onward). Returns the file as it is now.
    func releaseByReply(_ file: SpoolFile, path: String, log: Logger) throws -> SpoolFile {
        guard let releaseAddress = config.quarantine.releaseAddress, let verdict = file.verdict else { return file }
        let e = file.envelope
        var dropped: [(route: Int, status: RecipientStatus)] = []
        for (k, route) in verdict.routes.enumerated() where route.status == .pending {
            guard let token = ReleaseToken.token(in: e.recipients[route.recipient].address, releaseAddress: releaseAddress) else { continue }
            var each = log
            each[metadataKey: "sender"] = "<\(e.mailFrom)>"
            switch ReplyRelease(config: config, layout: layout, keys: releaseKeys).decide(token: token, sender: e.mailFrom) {
            case .released(let entry, let copy):
                each.notice("release by reply: quarantined \(entry) released as \(copy) to <\(e.mailFrom)>", metadata: ["quarantine-id": "\(entry)"])
                sender.send(.deliver(id: copy))
            case .refused(let entry, let why):
                each.warning("release by reply refused: \(why)", metadata: entry.map { ["quarantine-id": "\($0)"] } ?? [:])
            }
            dropped.append((k, .dropped))
        }
        guard !dropped.isEmpty else { return file }
        try file.update(statuses: dropped, attempts: nil, sync: true)
        return try SpoolFile.read(path: path)
    }
}

/// The decision on one release request: the token, then the quarantine entry.
package struct ReplyRelease {
    package enum Decision: Equatable {
        /// Entry `entry` was put back in the queue as `copy` for the sender alone.
        case released(entry: String, copy: String)
        /// Refused; `entry` when the token named one.
        case refused(entry: String?, why: String)
    }

    package let config: PosternConfig
    package let layout: SpoolLayout
    package let keys: ReleaseKeyCache
    package var clock: @Sendable () -> Int = { Int(time(nil)) }

    package init(config: PosternConfig, layout: SpoolLayout, keys: ReleaseKeyCache = ReleaseKeyCache()) {
        self.config = config
        self.layout = layout
        self.keys = keys
    }

    /// The token must be genuine, unexpired and made for `sender` (the reply's envelope
    /// sender); the entry must still be there and offer release to that recipient.
    package func decide(token: String, sender: String) -> Decision {
        guard !sender.isEmpty else { return .refused(entry: nil, why: "from the null sender") }
        let q = config.quarantine
        let tokens: ReleaseToken
        do {
            tokens = ReleaseToken(key: try keys.key(secret: q.releaseSecret, layout: layout), clock: clock)
        } catch {
            return .refused(entry: nil, why: "cannot read the release key: \(error)")
        }
        let id: String
        switch tokens.verify(token, recipient: sender) {
        case .success(let named): id = named
        case .failure(let refusal):
            // A genuine token names its entry; a forged one names nothing worth logging as one.
            let named = if case .expired = refusal { ASCII.uppercased(String(token.prefix(QueueID.length))) } else { String?.none }
            return .refused(entry: named, why: "\(refusal)")
        }
        let quarantine = Quarantine(directory: q.path)
        let entry: SpoolFile
        do {
            entry = try SpoolFile.read(path: quarantine.path(id))
        } catch {
            return .refused(entry: id, why: "no longer in the quarantine (released and deleted, or past StoredTime)")
        }
        let lowered = ASCII.lowercased(sender)
        let offered = (entry.verdict?.routes ?? []).filter {
            ASCII.lowercased(entry.envelope.recipients[$0.recipient].address) == lowered && entry.verdict?.releaseOffered.contains($0.recipient) == true
        }
        guard !offered.isEmpty else { return .refused(entry: id, why: "<\(sender)> is not a recipient offered release of it") }
        // A token is good for one release: a second reply (or a replayed one) gets nothing more.
        guard offered.contains(where: { $0.status == .pending }) else { return .refused(entry: id, why: "already released to <\(sender)>") }
        do {
            let copy = try quarantine.release(id, only: [sender], layout: layout, resolver: RouteResolver(config: config))
            return .released(entry: id, copy: copy.id)
        } catch {
            return .refused(entry: id, why: "cannot release: \(error)")
        }
    }
}

/// The release key, read from the spool once per configured `ReleaseSecret` rather than for
/// every notice and every release request: the key file does not change while scannerd runs,
/// and a reload that changes the secret reads it again.
package final class ReleaseKeyCache: Sendable {
    private let cached = NIOLockedValueBox<(secret: String, key: [UInt8])?>(nil)
    /// How often the key was read (for the tests).
    private let readCount = NIOLockedValueBox(0)

    package init() {}

    package var reads: Int { readCount.withLockedValue { $0 } }

    package func key(secret: String, layout: SpoolLayout) throws(SpoolError) -> [UInt8] {
        if let c = cached.withLockedValue({ $0 }), c.secret == secret { return c.key }
        let key = try ReleaseToken.loadKey(secret: secret, layout: layout)
        readCount.withLockedValue { $0 += 1 }
        cached.withLockedValue { $0 = (secret, key) }
        return key
    }
}
