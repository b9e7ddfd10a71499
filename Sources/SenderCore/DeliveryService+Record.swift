import Glibc
import Logging
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// After an attempt: each route's outcome logged and counted, the DSNs it owes (failures,
/// delays past `[Sender] DelayWarningTime`, successes the next hop will not report), then the
/// file removed (all final) or deferred until its next attempt.
extension DeliveryService {
    /// Writes the outcomes to the spool file and moves it on: removed when every recipient is
    /// final, otherwise to `deferred/` with the time of the next attempt as its mtime.
    func record(file: SpoolFile, verdict: Verdict, results: [Int: RecipientOutcome], message: SpooledMessage,
                config: PosternConfig, log: Logger, started: Double) async {
        var tally = tallyOutcomes(file: file, verdict: verdict, results: results, config: config, log: log, started: started)
        for action in [DeliveryReport.Action.failed, .delayed, .relayed, .delivered] {
            if let report = tally.reports[action], !report.isEmpty {
                await writeReport(report, into: &tally, message: message, config: config, log: log)
            }
        }
        await settle(file: file, verdict: verdict, tally: tally, config: config, log: log)
    }

    private func tallyOutcomes(file: SpoolFile, verdict: Verdict, results: [Int: RecipientOutcome], config: PosternConfig,
                               log: Logger, started: Double) -> AttemptTally {
        let e = file.envelope
        let now = WallClock.seconds
        let delay = Self.delays(e, verdict: verdict, started: started, now: now)
        var tally = AttemptTally(original: e, errors: file.deliveryErrors, warned: file.delayWarnings, sender: config.sender,
                                 now: now)
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            guard let outcome = results[k] else {
                tally.stillPending += 1
                continue
            }
            tally.add(route: k, r, outcome: outcome)
            let rcpt = r.address.map { "\($0)>, orig_to=<\(e.recipients[r.recipient].address)" } ?? e.recipients[r.recipient].address
            let head = "to=<\(rcpt)>, relay=\(r.endpoint), \(delay)"
            switch outcome {
            case .delivered(let reply, _):
                metrics.sent.increment()
                metrics.delay.record(.milliseconds(Int64(max(0, now - e.arrival) * 1000)))
                log.info("\(head), dsn=\(reply.status.map { "\($0)" } ?? "2.0.0"), status=sent (\(reply))")
            case .failed(let reply):
                metrics.bounced.increment()
                log.notice("\(head), dsn=\(reply.status.map { "\($0)" } ?? "5.0.0"), status=bounced (\(reply))")
            case .deferred(let why) where tally.expired:
                metrics.expired.increment()
                log.notice("\(head), dsn=4.4.7, status=expired, returned to sender (\(why))")
            case .deferred(let why):
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

    /// A report must be durable before what it reports is recorded: failed recipients whose
    /// report cannot be written stay pending and are tried (and reported) again later, and a
    /// delay is warned of again at the next attempt.
    private func writeReport(_ report: DeliveryReport.Batch, into tally: inout AttemptTally, message: SpooledMessage,
                             config: PosternConfig, log: Logger) async {
        let layout = self.layout
        let hostname = config.general.hostname
        // A message that could not be made 7-bit (5.6.3) cannot go back whole through the
        // same kind of hop either: its header section, as text, can be encoded.
        let headersOnly = report.reported.contains { $0.status == "5.6.3" }
            ? "it could not be converted to 7 bits for a mail system without 8BITMIME" : nil
        do {
            let reportID = try await pool.runIfActive(eventLoop: group.next()) {
                // Read here, off the event loop, and only for a report.
                try report.write(messageSize: message.count, reading: { try message.read(from: 0, length: $0) },
                                 hostname: hostname, layout: layout, headersOnlyBecause: headersOnly)
            }.get()
            scanner.send(.scan(id: reportID))
            log.info("sender \(report.action.logName) notification: \(reportID)")
            if report.action == .delayed {
                let now = WallClock.seconds
                for k in report.routes { tally.warned[k] = now }
            }
        } catch {
            switch report.action {
            case .failed:
                log.error("cannot write the delivery status notification: \(error); recipients stay queued")
                let undo = Set(report.routes)
                tally.statuses.removeAll { undo.contains($0.route) }
                tally.stillPending += undo.count
            case .delayed:
                log.error("cannot write the delay notification: \(error); tried again at the next attempt")
            case .relayed, .delivered:
                // XXX: the recipients have their copy; delivering again to report it would be worse.
                log.error("cannot write the success notification: \(error); the sender will not get it")
            }
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
                    do {
                        // Made durable by the fsync of the update.
                        try file.writeDeliveryErrors(tally.errors, warned: tally.warned)
                    } catch let e as SpoolError where e.isDiskFull {
                        // The texts are only for `posternctl queue list`; a torn section is
                        // ignored by readers. A full spool must not park mail in hold/: the
                        // statuses below are written in place and need no new space. A delay
                        // warning not recorded here is sent once more, never skipped.
                        log.warning("delivery errors not recorded: \(e)")
                    }
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

extension DeliveryReport.Action {
    /// Postfix's words in its log: "sender non-delivery notification: ID".
    var logName: String {
        switch self {
        case .failed: "non-delivery"
        case .delayed: "delay"
        case .relayed, .delivered: "delivery status"
        }
    }
}

private func format2(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return String(r)
}
