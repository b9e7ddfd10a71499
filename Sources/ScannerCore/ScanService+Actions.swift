import Glibc
import Logging
import NIOCore
import PosternSMTP
import PosternSpool
import PosternUtil

/// What a verdict leads to besides the route: the quarantine copy, the admin notification,
/// and the DSNs owed for recipients blocked after their message was accepted.
extension ScanService {
    /// Stores a copy when any decision asks for `quarantine`; its routes are the recipients
    /// a release delivers to (those that did not get the message), and those whose notice
    /// offers release by reply are marked. Returns the copy's id, nil when none is asked for;
    /// throws when one is asked for and cannot be stored: then the verdict must not stand,
    /// or a message discarded into the quarantine would be gone.
    @discardableResult
    package func quarantine(_ outcome: StageScan.Outcome, envelope e: Envelope, message: StoredMessage, log: Logger) throws(SpoolError) -> String? {
        let wanted = outcome.decisions.filter { $0.extras.contains(.quarantine) }
        guard !wanted.isEmpty else { return nil }
        var copy = outcome.verdict
        // The routes are who a release delivers to: only recipients that did not get it.
        let keep = Set(wanted.filter { $0.main != .pass && $0.main != .continue }.map(\.recipient))
        copy.routes = copy.routes.filter { keep.contains($0.recipient) }.map { r in
            var r = r
            r.status = .pending
            return r
        }
        for d in wanted { copy.reasons[d.recipient] = d.reasons.last ?? "" }
        copy.releaseOffered = Set(wanted.filter { keep.contains($0.recipient) && Notification.event(of: $0) == .quarantine }.map(\.recipient))
        let id = try Quarantine(directory: config.quarantine.path).store(envelope: e, message: message, verdict: copy)
        metrics.quarantined.increment()
        log.notice("quarantined", metadata: ["reason": "\(wanted.first?.reasons.last ?? "")", "quarantine-id": "\(id)"])
        return id
    }

    /// Writes the notices that decisions with `notify` ask for (``Notification``); a recipient
    /// offered release of the quarantine copy `quarantined` gets its release address.
    package func notify(_ outcome: StageScan.Outcome, envelope e: Envelope, message: StoredMessage, quarantined: String?, log: Logger) {
        let wanted = outcome.decisions.filter { $0.extras.contains(.notify) }
        guard !wanted.isEmpty else { return }
        let config = self.config
        var headers: [HeaderField] = []
        do {
            headers = try message.headerFields()
        } catch {
            log.warning("the notices go without the message's header fields: \(error)")
        }
        var notification = Notification(original: e, headers: headers, config: config)
        if let quarantined, let address = config.quarantine.releaseAddress {
            notification.releaseAddress = releaseAddresses(for: quarantined, offered: outcome.decisions, envelope: e,
                                                           releaseAddress: address, log: log)
        }
        for notice in notification.notices(wanted, findings: outcome.findings) {
            do {
                let id = try LocalMessage.write(notice.buffer, from: notice.from, to: [notice.to], id: notice.id,
                                                hostname: config.general.hostname, layout: layout)
                log.info("notification queued", metadata: ["notification-id": "\(id)", "to": "<\(notice.to)>",
                                                            "party": "\(notice.party)", "event": "\(notice.event.map(\.rawValue) ?? "any")"])
                queue.add(id)
            } catch {
                log.error("cannot write notification: \(error)", metadata: ["to": "<\(notice.to)>"])
            }
        }
    }

    /// Routes marked `B` get their DSN (written durably first), then become `X`.
    package func settleBlocked(_ file: SpoolFile, log: Logger) throws {
        guard let verdict = file.verdict else { return }
        let owed = verdict.routes.enumerated().filter { $0.element.status == .blocked }
        guard !owed.isEmpty else { return }
        var report = DeliveryReport.Batch(original: file.envelope)
        for (k, route) in owed {
            let reason = verdict.reasons[route.recipient] ?? "blocked by content filter"
            report.add(route: k, recipient: route.recipient, status: "5.7.1",
                       diagnostic: "550 5.7.1 Message rejected: \(reason)", remote: nil)
        }
        if !report.isEmpty {
            // Blocked for its content: never sent back whole.
            let id = try report.write(messageSize: file.messageLength, reading: { try file.readMessage(upTo: $0) },
                                      hostname: config.general.hostname, layout: layout,
                                      headersOnlyBecause: "it was blocked by the content filter")
            log.info("blocked: sender notified", metadata: ["dsn-id": "\(id)", "nrcpt": "\(report.entries.count)"])
            queue.add(id)
        }
        try file.update(statuses: owed.map { ($0.offset, .dropped) }, attempts: nil, sync: false)
    }
}
