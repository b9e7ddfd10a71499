import ArgumentParser
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// senderd: delivers checked mail to each recipient's resolved SenderAddress.
@main
struct Senderd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "senderd", abstract: "Postern's sender.",
                                                    version: PosternVersion.current)

    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    func run() async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "senderd", configPath: config)
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        let key: [UInt8]
        do { key = try LoopGuard.loadKey(secureHash: cfg.sender.secureHash, layout: layout) } catch {
            logger.critical("cannot read or create the loop-guard key: \(error)")
            throw ExitCode(1)
        }
        let store = ConfigStore(cfg)
        let nextHopTLS = NextHopTLS()
        do {
            if let why = try nextHopTLS.contexts(for: cfg.sender).verifyingError { logger.warning("TLS = verify: \(why)") }
        } catch {
            // The PEM files passed the load-time check but the TLS library refuses them.
            logger.critical("cannot use [Sender] TLSCAFile / TLSCertificate / TLSKey: \(error)")
            throw ExitCode(DaemonBootstrap.exitConfig)
        }
        let delivery = DeliveryService(store: store, layout: layout, group: MultiThreadedEventLoopGroup.singleton,
                                       pool: pool, loopGuard: LoopGuard(key: key), logger: logger, metrics: SenderMetrics(),
                                       scanner: WakeupLink(endpoint: cfg.scanner.address, group: MultiThreadedEventLoopGroup.singleton, logger: logger),
                                       nextHopTLS: nextHopTLS)
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: delivery), .init(service: WatchdogService()),
                       .init(service: await ReloadService(store: store, logger: logger)),
                       .init(service: MetricsService(endpoint: cfg.metrics.sender, registry: delivery.metrics.registry,
                                                     group: MultiThreadedEventLoopGroup.singleton, logger: logger) {
                           delivery.metrics.refreshSpool(layout)
                       })],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await pool.shutdownGracefully()
    }
}
