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
    package let endpoints = EndpointCache()
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
        let pool = self.pool
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IPCServerHandler { m in
                        switch m {
                        case .deliver(let id): queue.add(id)
                        case .flush:
                            // Directory work does not belong on the event loops (where senderd's tasks run too).
                            Task { try? await pool.runIfActive { DeliveryService.releaseDeferred(layout: layout, queue: queue, logger: logger, all: true) } }
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
                    // A directory's worth of stat and rename: on the thread pool, not on an event loop.
                    try? await pool.runIfActive {
                        DeliveryService.releaseDeferred(layout: layout, queue: queue, logger: logger, all: false)
                        self.enqueueOutgoing()
                    }
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

    func destination(_ e: Endpoint, tls: TLSPolicy) -> DestinationPool {
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
}
