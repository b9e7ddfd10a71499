import ServiceLifecycle

/// Pings systemd's watchdog at half its interval while the daemon runs; idle otherwise.
public struct WatchdogService: Service {
    public init() {}

    public func run() async throws {
        guard let interval = Systemd.watchdogInterval() else {
            // An idle service must not return: that would end the whole group.
            try? await gracefulShutdown()
            return
        }
        let period = interval / 2
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            Systemd.notify("WATCHDOG=1")
            // The sleep ends at graceful shutdown: a plain sleep held the stop up to half of
            // WatchdogSec (15 s with the shipped units).
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: period) } } catch { break }
        }
    }
}
