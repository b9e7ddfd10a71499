import Glibc
import Logging
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// After an attempt: each route's outcome logged and counted, a DSN for the failures, then
/// the file removed (all final) or deferred until its next attempt.
extension DeliveryService {
    /// What one attempt came to, route by route.
    struct AttemptTally: Sendable {
        var statuses: [(route: Int, status: RecipientStatus)] = []
        var stillPending = 0
        var report: DeliveryReport.Batch
        /// Each route's last error, kept in the file for `posternctl queue list`.
        var errors: [Int: DeliveryError]
    }

    /// Writes the outcomes to the spool file and moves it on: removed when every recipient is
    /// final, otherwise to `deferred/` with the time of the next attempt as its mtime.
    func record(file: SpoolFile, verdict: Verdict, results: [Int: RecipientOutcome], message: ByteBuffer,
                config: PosternConfig, log: Logger, started: Double) async {
        var tally = tallyOutcomes(file: file, verdict: verdict, results: results, config: config, log: log, started: started)
        if !tally.report.isEmpty { await writeReport(&tally, message: message, config: config, log: log) }
        await settle(file: file, verdict: verdict, tally: tally, config: config, log: log)
    }

    private func tallyOutcomes(file: SpoolFile, verdict: Verdict, results: [Int: RecipientOutcome], config: PosternConfig,
                               log: Logger, started: Double) -> AttemptTally {
        let e = file.envelope
        let now = timespec.now.seconds
        let delay = Self.delays(e, verdict: verdict, started: started, now: now)
        let expired = now - e.arrival > Double(config.sender.maxQueueLifetime.components.seconds)
        var tally = AttemptTally(report: DeliveryReport.Batch(original: e), errors: file.deliveryErrors)
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            guard let outcome = results[k] else {
                tally.stillPending += 1
                continue
            }
            if case .delivered = outcome { tally.errors[k] = nil } else { tally.errors[k] = DeliveryError(time: now, text: outcome.text) }
            let rcpt = r.address.map { "\($0)>, orig_to=<\(e.recipients[r.recipient].address)" } ?? e.recipients[r.recipient].address
            let head = "to=<\(rcpt)>, relay=\(r.endpoint), \(delay)"
            switch outcome {
            case .delivered(let reply):
                tally.statuses.append((k, .delivered))
                metrics.sent.increment()
                metrics.delay.record(.milliseconds(Int64(max(0, now - e.arrival) * 1000)))
                log.info("\(head), dsn=\(reply.status.map { "\($0)" } ?? "2.0.0"), status=sent (\(reply))")
            case .failed(let reply):
                tally.statuses.append((k, .failed))
                tally.report.add(route: k, recipient: r.recipient, status: reply.status.map { "\($0)" } ?? "5.0.0",
                                 diagnostic: reply.description, remote: r.endpoint)
                metrics.bounced.increment()
                log.notice("\(head), dsn=\(reply.status.map { "\($0)" } ?? "5.0.0"), status=bounced (\(reply))")
            case .deferred(let why) where expired:
                tally.statuses.append((k, .failed))
                tally.report.add(route: k, recipient: r.recipient, status: "4.4.7", diagnostic: "delivery time expired: \(why)",
                                 remote: r.endpoint)
                metrics.expired.increment()
                log.notice("\(head), dsn=4.4.7, status=expired, returned to sender (\(why))")
            case .deferred(let why):
                tally.stillPending += 1
                metrics.deferred.increment()
                log.info("\(head), dsn=\(EnhancedStatus.first(in: why) ?? "4.0.0"), status=deferred (\(why))")
            }
        }
        return tally
    }

    /// Postfix's delay= and delays=: in all, then receiving / scanning / waiting in the queue /
    /// this delivery attempt.
    static func delays(_ e: Envelope, verdict: Verdict, started: Double, now: Double) -> String {
        "delay=\(format2(now - e.arrival)), delays=" + [e.endOfData - e.arrival, verdict.scanned - e.endOfData,
                                                       started - verdict.scanned, now - started]
            .map { format2(max(0, $0)) }.joined(separator: "/")
    }

    /// The report must be durable before the recipients are recorded as failed; if it cannot
    /// be written they stay pending and are tried (and reported) again later.
    private func writeReport(_ tally: inout AttemptTally, message: ByteBuffer, config: PosternConfig, log: Logger) async {
        let layout = self.layout
        let hostname = config.general.hostname
        let report = tally.report
        // A message that could not be made 7-bit (5.6.3) cannot go back whole through the
        // same kind of hop either: its header section, as text, can be encoded.
        let headersOnly = report.failures.contains { $0.status == "5.6.3" }
        do {
            let reportID = try await pool.runIfActive(eventLoop: group.next()) {
                try report.write(message: message, hostname: hostname, layout: layout, headersOnly: headersOnly)
            }.get()
            scanner.send(.scan(id: reportID))
            log.info("sender non-delivery notification: \(reportID)")
        } catch {
            log.error("cannot write the delivery status notification: \(error); recipients stay queued")
            let undo = Set(report.routes)
            tally.statuses.removeAll { undo.contains($0.route) }
            tally.stillPending += undo.count
        }
    }

    /// Removes the file when nothing is left to deliver; otherwise writes the statuses, the
    /// last errors and the attempt count durably and defers it until the next attempt.
    private func settle(file: SpoolFile, verdict: Verdict, tally: AttemptTally, config: PosternConfig, log: Logger) async {
        let layout = self.layout
        let id = file.envelope.id
        let attempts = verdict.attempts + 1
        let wait = Self.retryWait(after: attempts, intervals: config.sender.retryIntervals)
        do {
            let path = layout.path(id, .outgoing)
            if tally.stillPending == 0 {
                if unlink(path) != 0 { throw SpoolError("unlink", path) }
                log.info("removed")
            } else {
                // The future-based call: a status write must not be cancelled half-way.
                try await pool.runIfActive(eventLoop: group.next()) {
                    try file.writeDeliveryErrors(tally.errors)   // made durable by the fsync of the update
                    try file.update(statuses: tally.statuses, attempts: attempts, sync: true)
                    try Self.moveToDeferred(path, to: layout.path(id, .deferred), for: wait)
                }.get()
            }
        } catch {
            // Without the statuses on disk another attempt could deliver twice: keep the
            // message in hold/ for the administrator rather than retry it at once.
            if rename(layout.path(id, .outgoing), layout.path(id, .hold)) == 0 {
                log.error("cannot record delivery status (\(error)); message moved to hold/")
            } else {
                log.error("cannot record delivery status (\(error))")
            }
        }
    }

    /// `[Sender] RetryIntervals` for attempt `attempts`, the last one repeating (5m without any).
    static func retryWait(after attempts: Int, intervals: [Duration]) -> Duration {
        let intervals = intervals.isEmpty ? [Duration.seconds(300)] : intervals
        return intervals[min(attempts - 1, intervals.count - 1)]
    }

    /// Moves a file to `deferred/` with its next attempt's time as its mtime.
    private static func moveToDeferred(_ path: String, to deferred: String, for wait: Duration) throws {
        let next = timespec(tv_sec: time(nil) + Int(wait.components.seconds), tv_nsec: 0)
        var times = [next, next]
        if utimensat(AT_FDCWD, path, &times, 0) != 0 { throw SpoolError("utimensat", path) }
        if rename(path, deferred) != 0 { throw SpoolError("rename", path) }
    }
}

private func format2(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return String(r)
}
