import ArgumentParser
import PosternPolicy
import PosternRuntime
import PosternUtil
import SenderCore

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
        DaemonBootstrap.runTasksOnEventLoops(threads: 1)
        do {
            try await SenderDaemon.run(configPath: config)
        } catch let exit as DaemonExit {
            throw ExitCode(exit.code)
        }
    }
}
