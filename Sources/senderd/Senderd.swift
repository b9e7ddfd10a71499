import ArgumentParser
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// senderd: delivers checked mail to each recipient's resolved SenderAddress.
@main
struct Senderd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "senderd", abstract: "Postern's sender.",
        discussion: """
        senderd delivers checked mail over SMTP or LMTP to each recipient's route: the MTA's \
        return port (a rule's SenderAddress, e.g. inet:10025@CLIENT-IP) or [Sender] Address. \
        It reuses connections, retries with back-off ([Sender] RetryIntervals), and after \
        MaxQueueLifetime returns the message to its sender with a delivery status notification. \
        It is woken on a unix socket ([Sender] ControlAddress, /run/postern/senderd.sock).

        It is started by systemd as postern-senderd.service (socket postern-senderd.socket).

        It exits 78 (EX_CONFIG) when the configuration cannot be loaded; the unit does not \
        restart it then (RestartPreventExitStatus=78).
        """,
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
