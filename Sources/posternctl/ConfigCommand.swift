import ArgumentParser
import Glibc
import Shared

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration tools.",
                                                    subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the configuration file; print each error as file:line:column: message.")
        @OptionGroup var options: ConfigOption

        func run() throws {
            do {
                _ = try PosternConfig.load(path: options.config)
                print("\(options.config): configuration OK")
            } catch {
                var text = "\(error)\n"
                text.withUTF8 { p in _ = write(2, p.baseAddress, p.count) }
                throw ExitCode(DaemonBootstrap.exitConfig)
            }
        }
    }
}
