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
            _ = try options.load()
            print("\(options.config): configuration OK")
        }
    }
}
