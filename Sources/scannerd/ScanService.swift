import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// Takes messages from `scan/`, decides their verdict and per-recipient routes, appends that
/// to the spool file and moves it to `outgoing/`, then wakes senderd.
///
/// The verdict is appended without fsync: receiverd's fsync already made the message durable,
/// and a verdict lost in a power failure shows up as a file in `scan/` or an `outgoing/` file
/// without a complete verdict, both of which are scanned again on start (docs/spool-format.md).
struct ScanService: Service {
    let store: ConfigStore
    var config: PosternConfig { store.current }
    let layout: SpoolLayout
    let group: any EventLoopGroup
    let pool: NIOThreadPool
    let sender: WakeupLink
    let logger: Logger
    let metrics: ScannerMetrics
    let queue = WorkQueue()
    /// Directory scans catch wake-ups that were lost while scannerd was down or busy.
    static let rescanInterval: Duration = .seconds(5)
    static let workers = 8

    func run() async throws {
        try recover()
        let queue = self.queue
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IPCServerHandler { m in
                        if case .scan(let id) = m { queue.add(id) }
                    })
                }
            }
        let listeners = try await Listeners.open(names: ["scanner"], endpoints: [config.scanner.address], bootstrap: bootstrap, logger: logger)
        Systemd.notify("READY=1\nSTATUS=scanning")
        logger.info("ready")
        await withTaskGroup(of: Void.self) { tasks in
            for _ in 0..<ScanService.workers {
                tasks.addTask { while let id = await queue.next() { await self.scan(id); queue.done(id) } }
            }
            tasks.addTask {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: ScanService.rescanInterval) } } catch { break }
                    self.enqueueDirectory()
                }
            }
            try? await gracefulShutdown()
            Systemd.notify("STOPPING=1")
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
        for id in layout.ids(in: .scan) { queue.add(id) }
    }

    /// XXX: runs on the cooperative pool: without plug-ins a scan is a few page-cache reads
    /// and writes, cheaper than a hop to the thread pool.
    private func scan(_ id: String) async {
        let started = ContinuousClock.now
        do {
            try scanBlocking(id)
            metrics.duration.record(ContinuousClock.now - started)
        } catch {
            metrics.errors.increment()
            logger.error("scan failed: \(error)", metadata: ["queue-id": "\(id)"])
        }
    }

    private func scanBlocking(_ id: String) throws {
        let path = layout.path(id, .scan)
        let file: SpoolFile
        do {
            file = try SpoolFile.read(path: path)
        } catch let e as SpoolError where e.errno == ENOENT {
            return   // done already (a duplicate wake-up)
        } catch let e as SpoolFormatError {
            quarantineCorrupt(id, from: .scan, e)
            return
        }   // other errors (EMFILE, EIO…) are thrown and logged; the next scan tries again
        if file.verdict == nil {
            let config = self.config
            let resolver = RouteResolver(config: config)
            let headers = config.rules.usesHeaders ? HeaderField.parseSection(try file.readMessage()) : nil
            var verdict = Verdict(scanned: timespec.now.seconds, action: "pass")
            for i in file.envelope.recipients.indices {
                verdict.routes.append(.init(recipient: i, endpoint: resolver.route(for: file.envelope, recipient: i, headers: headers).description))
            }
            try file.writeVerdict(verdict, sync: false)
            metrics.passed.increment()
            var log = logger
            log[metadataKey: "queue-id"] = "\(id)"
            log.info("scanned", metadata: [
                "verdict": "pass", "routes": "\(Set(verdict.routes.map(\.endpoint)).sorted().joined(separator: ","))",
            ])
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
        move(id, from, .corrupt, "unreadable queue file (\(error))")
    }
}
