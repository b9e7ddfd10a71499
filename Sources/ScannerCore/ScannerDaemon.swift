import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSpool
import PosternUtil
import ServiceLifecycle

/// scannerd's life: reads the configuration, opens the spool, builds the services and runs them
/// until SIGTERM. The `scannerd` executable only parses its command line and calls this.
public enum ScannerDaemon {
    public static func run(configPath: String) async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "scannerd", configPath: configPath)
        // The release key: made here, as the daemons' user, so that posternctl (perhaps root)
        // finds it for the digest and never makes one the daemons could not read.
        do { _ = try ReleaseToken.loadKey(secret: cfg.quarantine.releaseSecret, layout: layout) } catch {
            logger.error("cannot make the release key (release by reply will fail): \(error)")
        }
        // The quarantine too, so that `posternctl quarantine list` finds it (empty) before the
        // first message is quarantined; a store makes it as well.
        do { try SysCall.mkdirs(cfg.quarantine.path, mode: 0o750) } catch {
            logger.error("cannot make the quarantine ([Quarantine] Path): \(error)")
        }
        let group = MultiThreadedEventLoopGroup.singleton
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        // One thread per MTA session waiting, up to Postfix's default process limit for the filter.
        let prescanPool = NIOThreadPool(numberOfThreads: 32)
        prescanPool.start()
        let store = ConfigStore(cfg)
        let scan = ScanService(store: store, layout: layout, group: group, pool: pool, prescanPool: prescanPool,
                               sender: WakeupLink(endpoint: cfg.sender.controlAddress, group: group, logger: logger), logger: logger,
                               metrics: ScannerMetrics())
        let services = ServiceGroup(configuration: .init(
            // Shut down backwards, one after the other: the scanner first.
            services: [.init(service: WatchdogService()),
                       .init(service: MetricsService(endpoint: cfg.metrics.scanner, registry: scan.metrics.registry, group: group, logger: logger)),
                       .init(service: await ReloadService(store: store, logger: logger)),
                       .init(service: scan)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await pool.shutdownGracefully()
        try await prescanPool.shutdownGracefully()
    }
}
