import ArgumentParser
import Shared

/// posternctl: the administrator's tool.
@main
struct Posternctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "posternctl",
        abstract: "Administer Postern: run it, inspect and manage the queue and the quarantine, check the configuration and the rules.",
        discussion: """
        Under systemd the daemons are the units of postern.target (systemctl start|stop|reload \
        postern.target); posternctl reads and changes the spool they share, /var/spool/postern \
        ([General] SpoolDir), as root or as the postern user. `posternctl run` runs all three \
        daemons in the foreground instead, for containers and development.
        """,
        subcommands: [RunCommand.self, QueueCommand.self, QuarantineCommand.self, ConfigCommand.self, RulesCommand.self])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    /// The configuration, or its errors on stderr (`file:line:column: message`) and exit 78.
    func load() throws -> PosternConfig {
        do {
            return try PosternConfig.load(path: config)
        } catch {
            Stderr.write("\(error)\n")
            throw ExitCode(DaemonBootstrap.exitConfig)
        }
    }
}
