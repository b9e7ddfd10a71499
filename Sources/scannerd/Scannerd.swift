import ArgumentParser
import PosternPolicy
import PosternRuntime
import PosternUtil
import ScannerCore

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
        DaemonBootstrap.runTasksOnEventLoops(threads: 1)
        do {
            try await ScannerDaemon.run(configPath: config)
        } catch let exit as DaemonExit {
            throw ExitCode(exit.code)
        }
    }
}
