import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// receiverd: the SMTP/LMTP server that writes each message durably into the spool.
@main
struct Receiverd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receiverd", abstract: "Postern's SMTP/LMTP receiver.")

    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    func run() async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "receiverd", configPath: config)
        let group = MultiThreadedEventLoopGroup.singleton
        let pool = NIOThreadPool(numberOfThreads: 16)   // fsyncs in parallel: the journal batches them
        pool.start()
        let key = (try? LoopGuard.loadKey(secureHash: cfg.sender.secureHash, layout: layout)) ?? []
        let scannerPath: String = { if case .unix(let p) = cfg.scanner.address.location { return p }; return "" }()
        let ctx = ReceiverContext(
            config: cfg, layout: layout, hostname: cfg.general.hostname, threadPool: pool,
            scanSyncer: DirectorySyncer(path: layout.directory(.scan)),
            scanner: WakeupLink(path: scannerPath, group: group, logger: logger),
            loopGuard: LoopGuard(key: key), sessions: SessionRegistry(), logger: logger)
        let services = ServiceGroup(configuration: .init(
            services: [
                .init(service: ReceiverService(ctx: ctx, group: group)),
                .init(service: WatchdogService()),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await services.run()
        try await pool.shutdownGracefully()
    }
}
