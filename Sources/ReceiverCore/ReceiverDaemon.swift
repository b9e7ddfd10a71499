import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PosternPolicy
import PosternRuntime
import PosternSpool
import PosternUtil
import ServiceLifecycle

/// receiverd's life: reads the configuration, opens the spool, builds the services and runs them
/// until SIGTERM. The `receiverd` executable only parses its command line and calls this.
public enum ReceiverDaemon {
    public static func run(configPath: String) async throws {
        let (cfg, layout, logger) = DaemonBootstrap.start(label: "receiverd", configPath: configPath)
        let group = MultiThreadedEventLoopGroup.singleton
        let store = ConfigStore(cfg)
        let key: [UInt8]
        do { key = try LoopGuard.loadKey(secureHash: cfg.sender.secureHash, layout: layout) } catch {
            // An empty key would make every guard forgeable.
            logger.critical("cannot read or create the loop-guard key: \(error)")
            throw DaemonExit(1)
        }
        let committer: GroupCommitter
        let sessions = SessionRegistry()
        do {
            // With other sessions inside DATA, more commits follow within a fraction of a millisecond.
            committer = try GroupCommitter(layout: layout) { sessions.inData > 0 }
        } catch {
            logger.critical("cannot open the spool: \(error)")
            throw DaemonExit(1)
        }
        var tls: NIOSSLContext?
        if let cert = cfg.receiver.tlsCertificate, let key = cfg.receiver.tlsKey {
            do {
                tls = try ServerTLS.load(certificate: cert, key: key)
            } catch {
                logger.critical("cannot load TLSCertificate \(cert) / TLSKey \(key): \(error)")
                throw DaemonExit(DaemonBootstrap.exitConfig)
            }
        }
        let serverTLS = ServerTLS(tls)
        let ctx = ReceiverContext(
            store: store, layout: layout,
            committer: committer,
            scanner: WakeupLink(endpoint: cfg.scanner.address, group: group, logger: logger),
            sender: WakeupLink(endpoint: cfg.sender.controlAddress, group: group, logger: logger),
            prescan: PrescanClient(endpoint: cfg.scanner.address),
            loopGuard: LoopGuard(key: key), sessions: sessions, tls: serverTLS, metrics: ReceiverMetrics(), logger: logger)
        let services = ServiceGroup(configuration: .init(
            // Graceful shutdown goes through the list backwards, one service after the other:
            // the receiver comes last so that it stops accepting at once on SIGTERM.
            services: [
                .init(service: WatchdogService()),
                .init(service: MetricsService(endpoint: cfg.metrics.receiver, registry: ctx.metrics.registry, group: group, logger: logger) {
                    ctx.metrics.sessions.set(Int64(ctx.sessions.count))
                }),
                .init(service: await ReloadService(store: store, logger: logger) { serverTLS.reload($0, logger: logger) }),
                .init(service: ReceiverService(ctx: ctx, group: group)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await services.run()
    }
}
