import Glibc
import Logging
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSpool
import PosternUtil

/// What every daemon does before it builds its services: read the configuration (refusing to
/// start on errors, printed as `file:line:column: message`), set up logging, create the spool.
public enum DaemonBootstrap {
    /// Runs Swift Concurrency's jobs on the NIO event loops of `MultiThreadedEventLoopGroup.singleton`
    /// instead of its own thread pool: a task awaiting a reply resumes on the loop that read it,
    /// without a thread hand-off (futex wake-up, context switch) each way. Only for a daemon's
    /// executable, once, before it starts: blocking work must then go to an `NIOThreadPool`.
    ///
    /// With `threads: 1` the daemon has one event loop. That suits scannerd and senderd: their
    /// connections are a few IPC sockets and next-hop sessions, not clients, and their blocking
    /// work (plug-ins, status updates, reports) goes to thread pools. With a loop per core, a
    /// task's next step ran on whichever loop woke it (a connection's, or the one a pool's
    /// result was handed to), and the steps of one message hopped between threads: with one
    /// loop each, scannerd's CPU per 10 KB message went from 0.140 to 0.115 ms and senderd's
    /// from 0.254 to 0.224 ms (16 sessions, medians of 4 interleaved runs).
    ///
    /// `NIO_SINGLETON_GROUP_LOOP_COUNT` in the environment, NIO's own setting, wins over
    /// `threads` (docs/operations.md, "Threads").
    public static func runTasksOnEventLoops(threads: Int? = nil) {
        if let threads, getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil { NIOSingletons.groupLoopCountSuggestion = threads }
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// sysexits.h EX_CONFIG: systemd's `RestartPreventExitStatus=78` stops restart loops on it.
    public static let exitConfig: Int32 = 78

    public static func start(label: String, configPath: String) -> (PosternConfig, SpoolLayout, Logger) {
        // Until ReloadService traps it, a SIGHUP (an early `systemctl reload`, or posternctl
        // passing one on) must not end the daemon.
        signal(SIGHUP, SIG_IGN)
        let config: PosternConfig
        do {
            config = try PosternConfig.load(path: configPath)
        } catch {
            Stderr.write("\(label): \(error)\n")
            exit(exitConfig)
        }
        PosternLogHandler.bootstrap(label: label, level: Logger.Level(rawValue: "\(config.general.logLevel)") ?? .info)
        let logger = Logger(label: label)
        for warning in config.warnings { logger.warning("\(warning)") }
        let layout = SpoolLayout(root: config.general.spoolDir)
        do {
            try layout.createDirectories()
        } catch {
            logger.critical("cannot create spool directories: \(error)")
            exit(1)
        }
        do {
            try Privileges.drop(config, layout: layout, logger: logger)
        } catch {
            logger.critical("\(error)")
            exit(1)
        }
        return (config, layout, logger)
    }
}

/// A daemon ends with this exit status (sysexits.h): the executable turns it into its exit code.
public struct DaemonExit: Error, Sendable {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
}
