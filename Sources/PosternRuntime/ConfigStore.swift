import Logging
import NIOConcurrencyHelpers
import PosternPolicy
import ServiceLifecycle
import UnixSignals

/// The configuration in force, replaced on SIGHUP. A file with errors is refused — each error
/// logged as `file:line:column: message` — and the old configuration stays in force.
/// Listening addresses and the spool directory only change on restart.
public final class ConfigStore: Sendable {
    private let box: NIOLockedValueBox<PosternConfig>
    public let path: String

    public init(_ config: PosternConfig) {
        box = NIOLockedValueBox(config)
        path = config.path
    }

    public var current: PosternConfig { box.withLockedValue { $0 } }

    /// Reads the file again; returns false (and keeps the old configuration) on errors.
    @discardableResult
    public func reload(logger: Logger) -> Bool {
        let fresh: PosternConfig
        do {
            fresh = try PosternConfig.load(path: path)
        } catch {
            for e in error.errors { logger.error("reload refused: \(e)") }
            return false
        }
        let old = current
        if fresh.receiver.address != old.receiver.address || fresh.general.spoolDir != old.general.spoolDir
            || fresh.scanner.address != old.scanner.address || fresh.sender.controlAddress != old.sender.controlAddress {
            logger.warning("listening addresses and SpoolDir changed in \(path): they take effect on restart")
        }
        for warning in fresh.warnings { logger.warning("\(warning)") }
        box.withLockedValue { $0 = fresh }
        logger.info("configuration reloaded from \(path)")
        return true
    }
}

/// Reloads the configuration on every SIGHUP until shutdown.
public struct ReloadService: Service {
    package let store: ConfigStore
    package let logger: Logger
    package let signals: UnixSignalsSequence
    /// What the daemon re-reads besides the configuration (files it names), after a reload
    /// that was taken.
    package let then: @Sendable (PosternConfig) -> Void

    /// Traps SIGHUP at once (before the daemon reports READY), so that a reload sent right
    /// after start-up is never lost nor, with SIGHUP's default action, fatal.
    public init(store: ConfigStore, logger: Logger, then: @escaping @Sendable (PosternConfig) -> Void = { _ in }) async {
        self.store = store
        self.logger = logger
        self.then = then
        self.signals = await UnixSignalsSequence(trapping: .sighup)
    }

    public func run() async throws {
        let signals = self.signals
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                Systemd.notify("RELOADING=1")
                if store.reload(logger: logger) { then(store.current) }
                Systemd.notify("READY=1")
            }
        } onGracefulShutdown: {}
    }
}
