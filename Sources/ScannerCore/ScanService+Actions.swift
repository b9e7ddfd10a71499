import Glibc
import Logging
import NIOCore
import PosternSMTP
import PosternSpool

/// What a verdict leads to besides the route: the quarantine copy, the admin notification,
/// and the DSNs owed for recipients blocked after their message was accepted.
extension ScanService {
    /// Stores a copy when any decision asks for `quarantine`; its routes are the recipients
    /// a release delivers to (those that did not get the message).
    package func quarantine(_ outcome: StageScan.Outcome, envelope e: Envelope, message: [UInt8], log: Logger) {
        let wanted = outcome.decisions.filter { $0.extras.contains(.quarantine) }
        guard !wanted.isEmpty else { return }
        var copy = outcome.verdict
        // The routes are who a release delivers to: only recipients that did not get it.
        let keep = Set(wanted.filter { $0.main != .pass && $0.main != .continue }.map(\.recipient))
        copy.routes = copy.routes.filter { keep.contains($0.recipient) }.map { r in
            var r = r
            r.status = .pending
            return r
        }
        for d in wanted { copy.reasons[d.recipient] = d.reasons.last ?? "" }
        do {
            try Quarantine(directory: config.quarantine.path).store(envelope: e, message: message, verdict: copy)
            metrics.quarantined.increment()
            log.notice("quarantined", metadata: ["reason": "\(wanted.first?.reasons.last ?? "")"])
        } catch {
            log.error("cannot quarantine: \(error)")
        }
    }

    /// Writes one notification to AdminMail when any decision asks for `notify`.
    package func notify(_ outcome: StageScan.Outcome, envelope e: Envelope, message: [UInt8], log: Logger) {
        let wanted = outcome.decisions.filter { $0.extras.contains(.notify) }
        guard !wanted.isEmpty else { return }
        let config = self.config
        let body = Notification.message(original: e, decisions: wanted, findings: outcome.findings,
                                        headers: HeaderField.parseSection(message), config: config, id: QueueID.make())
        do {
            let id = try LocalMessage.write(body.buffer, from: config.notifier.filterMail, to: [config.notifier.adminMail],
                                            id: body.id, hostname: config.general.hostname, layout: layout)
            log.info("notification queued", metadata: ["notification-id": "\(id)", "to": "<\(config.notifier.adminMail)>"])
            queue.add(id)
        } catch {
            log.error("cannot write notification: \(error)")
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
                       diagnostic: "550 5.7.1 Message rejected: \(reason)", remote: config.general.hostname)
        }
        if !report.isEmpty {
            // Blocked for its content: never sent back whole.
            let id = try report.write(message: try file.readMessage(), hostname: config.general.hostname, layout: layout, headersOnly: true)
            log.info("blocked: sender notified", metadata: ["dsn-id": "\(id)", "nrcpt": "\(report.entries.count)"])
            queue.add(id)
        }
        try file.update(statuses: owed.map { ($0.offset, .dropped) }, attempts: nil, sync: false)
    }
}
