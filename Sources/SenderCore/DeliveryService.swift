import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSMTP
import PosternSpool
import PosternUtil
import ServiceLifecycle

/// Delivers what scannerd put in `outgoing/`: groups recipients by route, hands each group to
/// the pool of its next hop, records every recipient's outcome in the spool file, and moves
/// messages with temporary failures to `deferred/` until their next attempt.
package struct DeliveryService: Service {
    package let store: ConfigStore
    package var config: PosternConfig { store.current }
    package let layout: SpoolLayout
    package let group: any EventLoopGroup
    package let pool: NIOThreadPool
    package let loopGuard: LoopGuard
    package let logger: Logger
    package let metrics: SenderMetrics
    /// Wakes scannerd for the delivery reports senderd writes into `scan/`.
    package let scanner: WakeupLink
    /// TLS client contexts, rebuilt when a reload changes the files.
    package let nextHopTLS: NextHopTLS
    package let queue = WorkQueue()
    package let pools = NIOLockedValueBox<[PoolKey: DestinationPool]>([:])
    /// How often `deferred/` is looked at for messages whose time has come.
    package static let deferredScanInterval: Duration = .seconds(5)
    /// How long a stopping senderd lets deliveries in flight finish before it cuts their
    /// connections (they are deferred, and may be delivered twice if the next hop had them).
    package static let inFlightGrace: Duration = .seconds(8)
    /// Messages delivered at once; each waits on the network, not the CPU.
    package static let workers = 128

    package var settings: SenderSettings {
        let config = self.config
        return SenderSettings(hostname: config.general.hostname, maxConnections: config.sender.maxConnections,
                       connectTimeout: config.sender.connectTimeout,
                       readTimeout: max(config.sender.commandTimeout, config.sender.dataTimeout))
    }

    package func run() async throws {
        let queue = self.queue
        let layout = self.layout
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IPCServerHandler { m in
                        switch m {
                        case .deliver(let id): queue.add(id)
                        case .flush:
                            // Directory work does not belong on the event loop.
                            Task { DeliveryService.releaseDeferred(layout: layout, queue: queue, logger: logger, all: true) }
                        case .scan, .prescan, .verdict, .unscanned: break
                        }
                    })
                }
            }
        let listeners = try await Listeners.open(names: ["sender"], endpoints: [config.sender.controlAddress], setting: "[Sender] ControlAddress", bootstrap: bootstrap, logger: logger)
        enqueueOutgoing()
        Systemd.notify("READY=1\nSTATUS=delivering")
        DaemonStatus.publish(.ready, runDir: config.general.runDir, logger: logger)
        logger.info("ready")
        await withTaskGroup(of: Void.self) { tasks in
            for _ in 0..<DeliveryService.workers {
                tasks.addTask { while let id = await queue.next() { await self.deliver(id); queue.done(id) } }
            }
            tasks.addTask {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    // Only this sleep ends at shutdown; cancelling the whole group would also
                    // cancel deliveries in flight and their status writes.
                    do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: DeliveryService.deferredScanInterval) } } catch { break }
                    DeliveryService.releaseDeferred(layout: layout, queue: queue, logger: logger, all: false)
                    self.enqueueOutgoing()
                }
            }
            try? await gracefulShutdown()
            Systemd.notify("STOPPING=1")
            DaemonStatus.publish(.stopping, runDir: config.general.runDir, logger: logger)
            for l in listeners { try? await l.close() }
            queue.close()
            let pools = self.pools
            Task {   // deliveries in flight finish, unless a next hop stalls them: then they are deferred
                try? await Task.sleep(for: DeliveryService.inFlightGrace)
                for p in pools.withLockedValue({ Array($0.values) }) { p.abortAll() }
            }
        }
        for p in pools.withLockedValue({ Array($0.values) }) { p.closeIdle() }
        try? await Task.sleep(for: .milliseconds(100))   // let idle connections say QUIT
    }

    private func enqueueOutgoing() {
        for id in layout.ids(in: .outgoing) { queue.add(id) }
    }

    /// Moves deferred messages whose next-attempt time (the file's mtime) has come back to
    /// `outgoing/`; `all` for `posternctl queue flush`.
    package static func releaseDeferred(layout: SpoolLayout, queue: WorkQueue, logger: Logger, all: Bool) {
        let now = time(nil)
        for id in layout.ids(in: .deferred) {
            let path = layout.path(id, .deferred)
            var st = stat()
            guard stat(path, &st) == 0, all || st.st_mtim.tv_sec <= now else { continue }
            if rename(path, layout.path(id, .outgoing)) == 0 { queue.add(id) }
        }
    }

    private func destination(_ e: Endpoint, tls: TLSPolicy) -> DestinationPool {
        pools.withLockedValue { p in
            let key = PoolKey(endpoint: e, tls: tls)
            if let existing = p[key] { return existing }
            let store = self.store, cache = self.nextHopTLS
            let created = DestinationPool(endpoint: e, tls: tls, group: group, settings: settings, logger: logger) {
                NextHopPolicy(endpoint: e, tls: tls, sender: store.current.sender, cache: cache)
            }
            p[key] = created
            return created
        }
    }

    private func deliver(_ id: String) async {
        let started = timespec.now.seconds
        let config = self.config   // one snapshot per message (SIGHUP may replace it)
        var log = logger
        log[metadataKey: "queue-id"] = "\(id)"
        let path = layout.path(id, .outgoing)
        // XXX: reads from the page cache run on the cooperative pool: a thread-pool hop per
        // message cost more than the read itself. Only fsyncs go to the thread pool.
        let file: SpoolFile
        let message: ByteBuffer
        do {
            (file, message) = try SpoolFile.readWithMessage(path: path)
        } catch let e as SpoolError where e.errno == ENOENT {
            return   // delivered already (a duplicate wake-up)
        } catch let e as SpoolFormatError {
            if rename(path, layout.path(id, .corrupt)) == 0 { log.error("unreadable queue file moved to corrupt/: \(e)") }
            return
        } catch {
            log.error("cannot read queue file: \(error)")
            return
        }
        guard let verdict = file.verdict, verdict.readyForDelivery else {
            // scannerd has work left on it (a scan, a DSN for a block): never deliver around it.
            if rename(path, layout.path(id, .scan)) == 0 { log.warning("not fully scanned; moved back to scan/") }
            return
        }
        let e = file.envelope
        // One transaction per next hop and set of recipient-only header fields.
        var pending: [Transaction: [Int]] = [:]   // → route indices
        var badRoutes: [Int] = []
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            guard let ep = try? Endpoint.parse(r.endpoint), !ep.hasMacros else {
                // scannerd writes only valid routes; a damaged one must not retry for ever.
                badRoutes.append(k)
                continue
            }
            pending[Transaction(endpoint: ep, tls: verdict.recipientTLS[r.recipient] ?? config.sender.tls,
                                headers: verdict.recipientHeaders[r.recipient] ?? []), default: []].append(k)
        }
        var head = ByteBuffer()
        head.writeString(loopGuard.header(host: config.general.hostname, id: id, bodyHash: e.bodyHash) + "\r\n")
        for h in verdict.addHeaders { head.writeString(h + "\r\n") }
        func payload(_ extra: [String]) -> ByteBuffer {
            var out = head
            out.reserveCapacity(head.readableBytes + message.readableBytes + 64 * extra.count)
            for h in extra { out.writeString(h + "\r\n") }
            out.writeImmutableBuffer(message)
            return out
        }

        var results = await withCheckedContinuation { (c: CheckedContinuation<[Int: RecipientOutcome], Never>) in
            let collector = OutcomeCollector(expected: pending.count, continuation: c)
            let several = pending.count > 1
            for (transaction, routeIndices) in pending {
                destination(transaction.endpoint, tls: transaction.tls).submit(DeliveryJob(
                    envelope: e, recipients: routeIndices.map { verdict.routes[$0].recipient },
                    addresses: routeIndices.map { verdict.routes[$0].address ?? e.recipients[verdict.routes[$0].recipient].address },
                    message: payload(transaction.headers),
                    finish: { outcomes in
                        if several {
                            // Record each next hop's final answers as soon as they come, so that
                            // a senderd killed while another hop is still busy does not deliver
                            // these again (the page cache survives a killed process).
                            let final = zip(routeIndices, outcomes).compactMap { (k, o) -> (route: Int, status: RecipientStatus)? in
                                switch o {
                                case .delivered: return (k, .delivered)
                                case .failed: return (k, .failed)
                                case .deferred: return nil
                                }
                            }
                            try? file.update(statuses: final, attempts: nil, sync: false)
                        }
                        collector.add(Array(zip(routeIndices, outcomes)))
                    }))
            }
        }
        for k in badRoutes {
            results[k] = .failed(Reply(554, EnhancedStatus(5, 3, 5), "bad route \(verdict.routes[k].endpoint) in queue file"))
        }
        await record(file: file, verdict: verdict, results: results, message: message, config: config, log: log,
                     started: started)
    }

    /// Writes the outcomes to the spool file and moves it on: removed when every recipient is
    /// final, otherwise to `deferred/` with the time of the next attempt as its mtime.
    private func record(file: SpoolFile, verdict: Verdict, results: [Int: RecipientOutcome], message: ByteBuffer,
                        config: PosternConfig, log: Logger, started: Double) async {
        let e = file.envelope
        let now = timespec.now.seconds
        // Postfix's delay= and delays=: in all, then receiving / scanning / waiting in the queue /
        // this delivery attempt.
        let delay = "delay=\(format2(now - e.arrival)), delays=" + [e.endOfData - e.arrival, verdict.scanned - e.endOfData,
                                                                  started - verdict.scanned, now - started]
            .map { format2(max(0, $0)) }.joined(separator: "/")
        var statuses: [(route: Int, status: RecipientStatus)] = []
        var stillPending = 0
        var failures: [(route: Int, failure: DeliveryReport.Failure)] = []
        func reportFailure(_ k: Int, _ status: String, _ diagnostic: String) {
            let rcpt = e.recipients[verdict.routes[k].recipient]
            guard DeliveryReport.wanted(for: rcpt, sender: e.mailFrom) else { return }
            failures.append((k, DeliveryReport.Failure(recipient: rcpt, status: status, diagnostic: diagnostic,
                                                       remote: verdict.routes[k].endpoint)))
        }
        let expired = now - e.arrival > Double(config.sender.maxQueueLifetime.components.seconds)
        // Each route's last error stays in the file for `posternctl queue list` (docs/spool-format.md).
        var errors = file.deliveryErrors
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            let rcpt = r.address.map { "\($0)>, orig_to=<\(e.recipients[r.recipient].address)" } ?? e.recipients[r.recipient].address
            if let outcome = results[k] {
                if case .delivered = outcome { errors[k] = nil } else { errors[k] = DeliveryError(time: now, text: outcome.text) }
            }
            switch results[k] {
            case .delivered(let reply):
                statuses.append((k, .delivered))
                metrics.sent.increment()
                metrics.delay.record(.milliseconds(Int64(max(0, now - e.arrival) * 1000)))
                log.info("to=<\(rcpt)>, relay=\(r.endpoint), \(delay), dsn=\(reply.status.map { "\($0)" } ?? "2.0.0"), status=sent (\(reply))")
            case .failed(let reply):
                statuses.append((k, .failed))
                reportFailure(k, reply.status.map { "\($0)" } ?? "5.0.0", reply.description)
                metrics.bounced.increment()
                log.notice("to=<\(rcpt)>, relay=\(r.endpoint), \(delay), dsn=\(reply.status.map { "\($0)" } ?? "5.0.0"), status=bounced (\(reply))")
            case .deferred(let why):
                if expired {
                    statuses.append((k, .failed))
                    reportFailure(k, "4.4.7", "delivery time expired: \(why)")
                    metrics.expired.increment()
                    log.notice("to=<\(rcpt)>, relay=\(r.endpoint), \(delay), dsn=4.4.7, status=expired, returned to sender (\(why))")
                } else {
                    stillPending += 1
                    metrics.deferred.increment()
                    log.info("to=<\(rcpt)>, relay=\(r.endpoint), \(delay), dsn=\(EnhancedStatus.first(in: why) ?? "4.0.0"), status=deferred (\(why))")
                }
            case nil:
                stillPending += 1
            }
        }
        if !failures.isEmpty {
            // The report must be durable before the recipients are recorded as failed; if it
            // cannot be written they stay pending and are tried (and reported) again later.
            let layout = self.layout
            let hostname = config.general.hostname
            let list = failures.map(\.failure)
            // A message that could not be made 7-bit (5.6.3) cannot go back whole through the
            // same kind of hop either: its header section, as text, can be encoded.
            let headersOnly = list.contains { $0.status == "5.6.3" }
            do {
                let reportID = try await pool.runIfActive(eventLoop: group.next()) {
                    try LocalMessage.writeReport(original: e, failures: list, message: message, hostname: hostname,
                                                 layout: layout, headersOnly: headersOnly)
                }.get()
                scanner.send(.scan(id: reportID))
                log.info("sender non-delivery notification: \(reportID)")
            } catch {
                log.error("cannot write the delivery status notification: \(error); recipients stay queued")
                let undo = Set(failures.map(\.route))
                statuses.removeAll { undo.contains($0.route) }
                stillPending += undo.count
            }
        }
        let layout = self.layout
        let id = e.id
        let attempts = verdict.attempts + 1
        let intervals = config.sender.retryIntervals.isEmpty ? [Duration.seconds(300)] : config.sender.retryIntervals
        let wait = intervals[min(attempts - 1, intervals.count - 1)]
        let remaining = stillPending
        let updates = statuses
        let lastErrors = errors
        do {
            let path = layout.path(id, .outgoing)
            if remaining == 0 {
                if unlink(path) != 0 { throw SpoolError("unlink", path) }
            } else {
                // The future-based call: a status write must not be cancelled half-way.
                try await pool.runIfActive(eventLoop: group.next()) {
                    try file.writeDeliveryErrors(lastErrors)   // made durable by the fsync of the update
                    try file.update(statuses: updates, attempts: attempts, sync: true)
                    var times = [timespec(tv_sec: time(nil) + Int(wait.components.seconds), tv_nsec: 0),
                                 timespec(tv_sec: time(nil) + Int(wait.components.seconds), tv_nsec: 0)]
                    if utimensat(AT_FDCWD, path, &times, 0) != 0 { throw SpoolError("utimensat", path) }
                    if rename(path, layout.path(id, .deferred)) != 0 { throw SpoolError("rename", path) }
                }.get()
            }
            if stillPending == 0 { log.info("removed") }
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
}

/// Gathers the outcomes of one message's jobs (one per next hop) and resumes its delivery
/// task once all have reported.
package final class OutcomeCollector: Sendable {
    private let state: NIOLockedValueBox<(left: Int, results: [Int: RecipientOutcome])>
    private let continuation: CheckedContinuation<[Int: RecipientOutcome], Never>

    package init(expected: Int, continuation: CheckedContinuation<[Int: RecipientOutcome], Never>) {
        state = NIOLockedValueBox((expected, [:]))
        self.continuation = continuation
        if expected == 0 { continuation.resume(returning: [:]) }
    }

    package func add(_ outcomes: [(Int, RecipientOutcome)]) {
        let done: [Int: RecipientOutcome]? = state.withLockedValue { s in
            for (k, o) in outcomes { s.results[k] = o }
            s.left -= 1
            return s.left == 0 ? s.results : nil
        }
        if let done { continuation.resume(returning: done) }
    }
}

private func format2(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return String(r)
}

/// Recipients of a message that go out in one transaction: same next hop and TLS policy, same
/// header fields.
package struct Transaction: Hashable {
    package let endpoint: Endpoint
    package let tls: TLSPolicy
    package let headers: [String]
}

/// One pool of connections per next hop and TLS policy.
package struct PoolKey: Hashable {
    package let endpoint: Endpoint
    package let tls: TLSPolicy
}
