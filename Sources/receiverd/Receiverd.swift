import ArgumentParser
import PosternPolicy
import PosternRuntime
import PosternUtil
import ReceiverCore

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
        do {
            try await ReceiverDaemon.run(configPath: config)
        } catch let exit as DaemonExit {
            throw ExitCode(exit.code)
        }
    }
}
