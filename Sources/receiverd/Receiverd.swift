import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Shared

/// receiverd: the SMTP/LMTP server that writes each message durably into the spool.
@main
struct Receiverd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receiverd", abstract: "Postern's SMTP/LMTP receiver.",
        discussion: """
        receiverd is Postern's SMTP/LMTP server: the MTA's content filter connects to it \
        ([Receiver] Address, 127.0.0.1:10024 by default). It writes each message durably \
        into the spool (fsync, then rename) before it answers 250, hands it to scannerd, and \
        in synchronous mode (BeforeQueueFilters) waits for scannerd's verdict and answers with it.

        It is started by systemd as postern-receiverd.service, which holds its listening \
        socket (postern-receiverd.socket) while it restarts, so the MTA never sees a refused \
        connection. Start and stop Postern with systemctl start|stop postern.target.

        It exits 78 (EX_CONFIG) when the configuration cannot be loaded; the unit does not \
        restart it then (RestartPreventExitStatus=78).
        """,
        version: PosternVersion.current)

    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    func run() async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "receiverd", configPath: config)
        let group = MultiThreadedEventLoopGroup.singleton
        let store = ConfigStore(cfg)
        let pool = NIOThreadPool(numberOfThreads: 16)   // fsyncs in parallel: the journal batches them
        pool.start()
        let key: [UInt8]
        do { key = try LoopGuard.loadKey(secureHash: cfg.sender.secureHash, layout: layout) } catch {
            // An empty key would make every guard forgeable.
            logger.critical("cannot read or create the loop-guard key: \(error)")
            throw ExitCode(1)
        }
        let committer: GroupCommitter
        let sessions = SessionRegistry()
        do {
            // With other sessions inside DATA, more commits follow within a fraction of a millisecond.
            committer = try GroupCommitter(layout: layout, target: .scan) { sessions.inData > 0 }
        } catch {
            logger.critical("cannot open the spool: \(error)")
            throw ExitCode(1)
        }
        var tls: NIOSSLContext?
        if let cert = cfg.receiver.tlsCertificate, let key = cfg.receiver.tlsKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                tls = try NIOSSLContext(configuration: configuration)
            } catch {
                logger.critical("cannot load TLSCertificate \(cert) / TLSKey \(key): \(error)")
                throw ExitCode(DaemonBootstrap.exitConfig)
            }
        }
        let ctx = ReceiverContext(
            store: store, layout: layout, threadPool: pool,
            committer: committer,
            scanner: WakeupLink(endpoint: cfg.scanner.address, group: group, logger: logger),
            prescan: PrescanClient(endpoint: cfg.scanner.address),
            loopGuard: LoopGuard(key: key), sessions: sessions, tls: tls, metrics: ReceiverMetrics(), logger: logger)
        let services = ServiceGroup(configuration: .init(
            // Graceful shutdown goes through the list backwards, one service after the other:
            // the receiver comes last so that it stops accepting at once on SIGTERM.
            services: [
                .init(service: WatchdogService()),
                .init(service: MetricsService(endpoint: cfg.metrics.receiver, registry: ctx.metrics.registry, group: group, logger: logger) {
                    ctx.metrics.sessions.set(Int64(ctx.sessions.count))
                }),
                .init(service: await ReloadService(store: store, logger: logger)),
                .init(service: ReceiverService(ctx: ctx, group: group)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await services.run()
        try await pool.shutdownGracefully()
    }
}
