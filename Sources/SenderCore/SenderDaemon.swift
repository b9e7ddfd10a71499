import NIOCore
import NIOPosix
import PosternPolicy
import PosternRuntime
import PosternSpool
import PosternUtil
import ServiceLifecycle

/// senderd's life: reads the configuration, opens the spool, builds the services and runs them
/// until SIGTERM. The `senderd` executable only parses its command line and calls this.
public enum SenderDaemon {
    public static func run(configPath: String) async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "senderd", configPath: configPath)
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        let key: [UInt8]
        do { key = try LoopGuard.loadKey(secureHash: cfg.sender.secureHash, layout: layout) } catch {
            logger.critical("cannot read or create the loop-guard key: \(error)")
            throw DaemonExit(1)
        }
        let store = ConfigStore(cfg)
        let nextHopTLS = NextHopTLS()
        do {
            if let why = try nextHopTLS.contexts(for: cfg.sender).verifyingError { logger.warning("TLS = verify: \(why)") }
        } catch {
            // The PEM files passed the load-time check but the TLS library refuses them.
            logger.critical("cannot use [Sender] TLSCAFile / TLSCertificate / TLSKey: \(error)")
            throw DaemonExit(DaemonBootstrap.exitConfig)
        }
        let delivery = DeliveryService(store: store, layout: layout, group: MultiThreadedEventLoopGroup.singleton,
                                       pool: pool, loopGuard: LoopGuard(key: key), logger: logger, metrics: SenderMetrics(),
                                       scanner: WakeupLink(endpoint: cfg.scanner.address, group: MultiThreadedEventLoopGroup.singleton, logger: logger),
                                       nextHopTLS: nextHopTLS)
        let services = ServiceGroup(configuration: .init(
            // Shut down backwards, one after the other: deliveries first.
            services: [.init(service: WatchdogService()),
                       .init(service: MetricsService(endpoint: cfg.metrics.sender, registry: delivery.metrics.registry,
                                                     group: MultiThreadedEventLoopGroup.singleton, logger: logger) {
                           delivery.metrics.refreshSpool(layout)
                       }),
                       .init(service: await ReloadService(store: store, logger: logger)),
                       .init(service: delivery)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await pool.shutdownGracefully()
    }
}
