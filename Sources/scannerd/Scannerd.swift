import ArgumentParser
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// scannerd: runs the checks and the rules, and resolves each recipient's route.
@main
struct Scannerd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scannerd", abstract: "Postern's scanner.",
        discussion: """
        scannerd checks spooled mail with the plug-ins listed in [Scanner] BeforeQueueFilters \
        and AfterQueueFilters (ClamAV, SpamAssassin, Rspamd, HeadersFilter, Attachments) and \
        the [Rules], writes the verdict and each recipient's route into the spool, keeps \
        quarantine copies, and wakes senderd. receiverd reaches it on a unix socket \
        ([Scanner] Address, /run/postern/scannerd.sock).

        It is started by systemd as postern-scannerd.service (socket postern-scannerd.socket).

        It exits 78 (EX_CONFIG) when the configuration cannot be loaded; the unit does not \
        restart it then (RestartPreventExitStatus=78).
        """,
        version: PosternVersion.current)

    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    func run() async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "scannerd", configPath: config)
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
