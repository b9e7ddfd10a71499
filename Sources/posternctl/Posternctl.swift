import ArgumentParser
import Glibc
import PosternPolicy
import PosternUtil

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

        """ + exitCodesHelp,
        version: PosternVersion.current,
        subcommands: [RunCommand.self, StatusCommand.self, QueueCommand.self, QuarantineCommand.self, ConfigCommand.self,
                      RulesCommand.self])

    /// ArgumentParser prints usage for command-line mistakes (exit 64); every other error is
    /// one `posternctl: …` line on stderr and its own exit code (``Sysexits``).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let e as ExitCodeError {
            Glibc.exit(e.code.rawValue)
        } catch let e as ConfigErrors {
            for error in e.errors { Stderr.write("\(error)\n") }
            Glibc.exit(Sysexits.config.rawValue)
        } catch {
            if let e = CtlError.from(error) {
                Stderr.write("posternctl: \(e.message)\n")
                Glibc.exit(e.code.rawValue)
            }
            exit(withError: error)
        }
    }
}

/// The exit codes, for every command's help (docs/operations.md has the same table).
let exitCodesHelp = """
    Exit codes (sysexits.h): 0 done; 64 command-line syntax; 65 malformed queue id or spool file \
    (nothing is changed); 66 no such message, or no spool or quarantine where the configuration \
    says; 67 no such recipient (quarantine release --rcpt); 69 a daemon is not running or not \
    reachable (flush, status); 71 system error; 74 I/O error; 77 permission denied; 78 \
    configuration error. Errors are printed on stderr as "posternctl: …" (configuration errors \
    as file:line:column: message).
    """

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file.")
    var config: String = PosternConfig.defaultPath

    /// The configuration; its errors are thrown and printed as `file:line:column: message`
    /// with exit 78.
    func load() throws -> PosternConfig {
        try PosternConfig.load(path: config)
    }
}
