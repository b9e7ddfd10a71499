import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil
import ServiceLifecycle

/// Takes messages from `scan/`, runs the after-queue plug-ins, decides their verdict and
/// per-recipient routes, appends that to the spool file and moves it to `outgoing/`, then
/// wakes senderd. Answers receiverd's PRESCAN requests (synchronous mode) with the verdict of
/// the before-queue plug-ins, over the socket: the file in `incoming/` is receiverd's, read
/// here and never written (docs/spool-format.md).
///
/// The verdict is appended without fsync: receiverd's fsync already made the message durable,
/// and a verdict lost in a power failure shows up as a file in `scan/` or an `outgoing/` file
/// without a complete verdict, both of which are scanned again on start (docs/spool-format.md).
package struct ScanService: Service {
    package let store: ConfigStore
    package var config: PosternConfig { store.current }
    package let layout: SpoolLayout
    package let group: any EventLoopGroup
    package let pool: NIOThreadPool
    /// PRESCAN requests: the MTA is waiting on these.
    package let prescanPool: NIOThreadPool
    package let sender: WakeupLink
    package let logger: Logger
    package let metrics: ScannerMetrics
    package let queue = WorkQueue()
    /// After-queue tempfails (a scanner down): not scanned again before this time.
    package let retryAt = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// The key of release tokens (``ReleaseKeyCache``).
    package let releaseKeys = ReleaseKeyCache()
    /// How long an after-queue tempfail waits before the next try.
    package static let retryDelay: Duration = .seconds(60)
    /// How often the quarantine is pruned.
    package static let pruneInterval: Duration = .seconds(300)
    /// Directory scans catch wake-ups that were lost while scannerd was down or busy.
    package static let rescanInterval: Duration = .seconds(5)
    package static let workers = 8

    package func run() async throws {
        try recover()
        let queue = self.queue
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IPCServerHandler { m, reply in
                        switch m {
                        case .scan(let id): queue.add(id)
                        case .prescan(let id): self.prescan(id, reply: reply)
                        default: break
                        }
                    })
                }
            }
        let listeners = try await Listeners.open(names: ["scanner"], endpoints: [config.scanner.address], setting: "[Scanner] Address", bootstrap: bootstrap, logger: logger)
        Systemd.notify("READY=1\nSTATUS=scanning")
        DaemonStatus.publish(.ready, runDir: config.general.runDir, logger: logger)
        logger.info("ready")
        await withTaskGroup(of: Void.self) { tasks in
            for _ in 0..<ScanService.workers {
                tasks.addTask { while let id = await queue.next() { await self.scan(id); queue.done(id) } }
            }
            tasks.addTask {
                var lastPrune = ContinuousClock.now - ScanService.pruneInterval
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    // Directory walks go to the thread pool, not to an event loop (where the
                    // scans' tasks run).
                    if ContinuousClock.now - lastPrune >= ScanService.pruneInterval {
                        lastPrune = .now
                        try? await pool.runIfActive { self.pruneQuarantine() }
                    }
                    do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: ScanService.rescanInterval) } } catch { break }
                    try? await pool.runIfActive { self.enqueueDirectory() }
                }
            }
            try? await gracefulShutdown()
            Systemd.notify("STOPPING=1")
            DaemonStatus.publish(.stopping, runDir: config.general.runDir, logger: logger)
            for l in listeners { try? await l.close() }
            queue.close()
        }
        sender.close()
    }

    /// On start: an `outgoing/` file without a complete verdict goes back to `scan/`; then every
    /// file in `scan/` is queued.
    private func recover() throws {
        for id in layout.ids(in: .outgoing) {
            do {
                let f = try SpoolFile.read(path: layout.path(id, .outgoing))
                if f.verdict == nil { move(id, .outgoing, .scan, "verdict incomplete, scanning again") }
            } catch let e as SpoolFormatError {
                quarantineCorrupt(id, from: .outgoing, e)
            } catch {
                logger.warning("cannot read queue file: \(error)", metadata: ["queue-id": "\(id)"])
            }
        }
        enqueueDirectory()
    }

    private func enqueueDirectory() {
        let now = ContinuousClock.now
        let waiting = retryAt.withLockedValue { r in
            r = r.filter { $0.value > now }
            return r
        }
        for id in layout.ids(in: .scan) where waiting[id] == nil { queue.add(id) }
    }

    private func pruneQuarantine() {
        let q = config.quarantine
        for id in Quarantine(directory: q.path).prune(storedTime: q.storedTime, maxSize: q.maxSize) {
            logger.info("removed from quarantine (StoredTime/MaxSize)", metadata: ["queue-id": "\(id)"])
        }
    }

    /// Without plug-ins a scan is a few page-cache reads and writes, cheaper than a hop to the
    /// thread pool; with plug-ins it waits on scanners, which must not hold an event loop
    /// (scannerd's tasks run on them: ``DaemonBootstrap/runTasksOnEventLoops()``).
    private func scan(_ id: String) async {
        let started = ContinuousClock.now
        do {
            if !config.scansWithPlugins {
                try scanBlocking(id)
            } else {
                try await pool.runIfActive { try self.scanBlocking(id) }
            }
            metrics.duration.record(ContinuousClock.now - started)
        } catch {
            metrics.errors.increment()
            logger.error("scan failed: \(error)", metadata: ["queue-id": "\(id)"])
        }
    }

    /// Synchronous mode: the before-queue scan of a message receiverd holds in `incoming/`,
    /// read only; the verdict goes back on the connection and receiverd writes it into its
    /// file. The plug-ins get 90 % of `ScanTimeout`, after which receiverd stops waiting and
    /// applies ProcessingErrors; a late answer is ignored there. Runs on its own threads,
    /// never behind after-queue scans.
    ///
    /// The quarantine copy is made before the verdict is sent, so that no verdict receiverd
    /// commits lacks its copy. When receiverd does not commit after all (its write fails, or
    /// the answer came too late) the client gets 4xx and sends the message again: its next
    /// scan makes a second copy and notification (docs/ipc.md). Better twice than never.
    private func prescan(_ id: String, reply: @escaping IPCServerHandler.Reply) {
        let started = ContinuousClock.now
        prescanPool.submit { state in
            guard state == .active else { return }
            var log = logger
            log[metadataKey: "queue-id"] = "\(id)"
            do {
                let file = try SpoolFile.read(path: layout.path(id, .incoming))
                let message = try StoredMessage(file: file)
                // The limit receiverd waits for: the shortest ScanTimeout of the recipients
                // (header: rules do not choose it before the queue).
                let timeout = RouteResolver(config: config).scanTimeout(for: file.envelope, recipients: file.envelope.recipients.indices,
                                                                        headers: nil)
                let pluginDeadline = started + timeout * 0.9
                let outcome = try StageScan(config: config, stage: .beforeQueue).run(file: file, message: message, deadline: pluginDeadline)
                // A 451 for all: the client sends it again, and that attempt keeps the copy.
                let retried = outcome.fates.allSatisfy { $0 == .retry }
                let quarantined: String?
                do {
                    quarantined = retried ? nil : try quarantine(outcome, envelope: file.envelope, message: message, log: log)
                } catch {
                    // No copy, no verdict: every recipient gets 451 and the client sends it again.
                    metrics.errors.increment()
                    log.error("cannot quarantine: \(error); the client is told to try again")
                    reply(.verdict(id: id, outcomes: outcome.fates.map { _ in RecipientFate.retry.outcome(id: id, reason: "cannot quarantine the message") },
                                   verdict: outcome.verdict))
                    return
                }
                record(outcome, envelope: file.envelope, stage: .beforeQueue, log: log, started: started)
                // receiverd's timeout began a moment before ours: a scan that ends right at it
                // can still notify about a message the client is told to send again.
                if ContinuousClock.now - started >= timeout {
                    log.warning("before-queue scan finished after ScanTimeout; receiverd applies ProcessingErrors")
                } else if !retried {
                    notify(outcome, envelope: file.envelope, message: message, quarantined: quarantined, log: log)
                }
                reply(.verdict(id: id, outcomes: outcome.fates.map { $0.outcome(id: id, reason: outcome.text) }, verdict: outcome.verdict))
            } catch {
                metrics.errors.increment()
                log.error("before-queue scan failed: \(error)")
                reply(.unscanned(id: id, reason: "internal error"))
            }
        }
    }

    /// Logs and counts a verdict: one line for the message, and a `to=` line for each
    /// recipient it ends for here (discarded, or blocked after it was accepted and reported by
    /// DSN); recipients refused to the client are logged by receiverd, which gave the refusal.
    package func record(_ outcome: StageScan.Outcome, envelope e: Envelope, stage: ScanStage, log: Logger, started: ContinuousClock.Instant) {
        metrics.count(outcome.verdict.action)
        for f in outcome.findings where f.verdict == .error { metrics.pluginErrors(f.plugin) }
        var meta: Logger.Metadata = [
            "verdict": "\(outcome.verdict.action)",
            "routes": "\(Set(outcome.verdict.routes.filter { $0.status == .pending }.map(\.endpoint)).sorted().joined(separator: ","))",
        ]
        if !outcome.findings.isEmpty {
            meta["findings"] = "\(outcome.findings.map { "\($0.plugin)=\($0.verdict)" }.joined(separator: ","))"
            meta["score"] = "\(outcome.verdict.score)"
            meta["delay"] = "\(ContinuousClock.now - started)"
        }
        if !outcome.text.isEmpty { meta["reason"] = "\(outcome.text)" }
        log.info("scanned", metadata: meta)
        for d in outcome.decisions where e.recipients.indices.contains(d.recipient) {
            let reason = d.reasons.last ?? outcome.text
            let refusedToClient = stage == .beforeQueue && outcome.fates.indices.contains(d.recipient) && !outcome.fates[d.recipient].isAccepted
            switch d.main {
            case .discard where !refusedToClient:
                log.notice("to=<\(e.recipients[d.recipient].address)>, dsn=2.0.0, status=discarded (\(reason))")
            case .reject where !refusedToClient:
                log.notice("to=<\(e.recipients[d.recipient].address)>, dsn=5.7.1, status=blocked (\(reason))")
            default:
                break
            }
        }
    }

    private func scanBlocking(_ id: String) throws {
        let path = layout.path(id, .scan)
        var file: SpoolFile
        do {
            file = try SpoolFile.read(path: path)
        } catch let e as SpoolError where e.errno == ENOENT {
            return   // done already (a duplicate wake-up)
        } catch let e as SpoolFormatError {
            quarantineCorrupt(id, from: .scan, e)
            return
        }   // other errors (EMFILE, EIO…) are thrown and logged; the next scan tries again
        var log = logger
        log[metadataKey: "queue-id"] = "\(id)"
        if file.verdict == nil || file.verdict!.afterQueuePending {
            let started = ContinuousClock.now
            let config = self.config
            // Without plug-ins and header rules the message itself is not needed.
            let message = config.scansWithPlugins || config.rules.usesHeaders ? try StoredMessage(file: file) : StoredMessage([])
            // The deadline is the plug-ins'; without any, its rules need not be evaluated.
            let timeout = !config.scansWithPlugins ? config.scanner.scanTimeout
                : RouteResolver(config: config).scanTimeout(for: file.envelope, recipients: file.envelope.recipients.indices,
                                                            headers: config.rules.usesHeaders ? try message.headerFields() : nil)
            let outcome = try StageScan(config: config, stage: .afterQueue)
                .run(file: file, message: message, deadline: started + timeout)
            if outcome.retry {
                retryAt.withLockedValue { $0[id] = .now + ScanService.retryDelay }
                metrics.count(.tempfail)
                log.warning("scan failed, trying again in \(ScanService.retryDelay)", metadata: ["reason": "\(outcome.text)"])
                return
            }
            // The copy first: once the verdict is written, the scan is not repeated.
            let quarantined: String?
            do {
                quarantined = try quarantine(outcome, envelope: file.envelope, message: message, log: log)
            } catch {
                retryAt.withLockedValue { $0[id] = .now + ScanService.retryDelay }
                metrics.count(.tempfail)
                log.error("cannot quarantine: \(error); the message stays queued and is scanned again in \(ScanService.retryDelay)")
                return
            }
            let written = try file.writeVerdict(outcome.verdict, sync: false)
            record(outcome, envelope: file.envelope, stage: .afterQueue, log: log, started: started)
            notify(outcome, envelope: file.envelope, message: message, quarantined: quarantined, log: log)
            file = written
        }
        file = try releaseByReply(file, path: path, log: log)
        try settleBlocked(file, log: log)
        if let verdict = file.verdict, !verdict.routes.contains(where: { $0.status == .pending }) {
            // Nothing left to deliver: every recipient was refused, discarded or reported.
            if unlink(path) != 0 { throw SpoolError("unlink", path) }
            log.info("removed", metadata: ["verdict": "\(verdict.action)"])
            return
        }
        guard rename(path, layout.path(id, .outgoing)) == 0 else { throw SpoolError("rename", path) }
        sender.send(.deliver(id: id))
    }

    private func move(_ id: String, _ from: SpoolState, _ to: SpoolState, _ why: String) {
        if rename(layout.path(id, from), layout.path(id, to)) == 0 {
            logger.warning("\(why): moved \(from.rawValue)/ to \(to.rawValue)/", metadata: ["queue-id": "\(id)"])
        }
    }

    private func quarantineCorrupt(_ id: String, from: SpoolState, _ error: any Error) {
        metrics.corrupt.increment()
        layout.moveToCorrupt(id, from: from, why: "unreadable queue file (\(error))", logger: logger)
    }
}
