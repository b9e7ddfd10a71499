import ArgumentParser
import Glibc
import NIOSSL
import PosternPolicy
import PosternUtil

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration tools.",
                                                    subcommands: [Check.self, Show.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the configuration file and every file it names; print each error as file:line:column: message.",
            discussion: """
                Reads the file as the daemons do (they refuse the same errors at start and on SIGHUP), \
                and also opens what it names: the STARTTLS certificate and key (loaded as receiverd \
                loads them), the rules' file: and rfile: lookups, [Notifier] TemplatesDir. Warnings \
                (accepted, but not what they may seem) go to stderr too; exit 78 on errors, 0 otherwise.

                """ + exitCodesHelp)
        @OptionGroup var options: ConfigOption

        func run() throws {
            let config = try options.load()
            var errors: [ConfigError] = []
            if let problem = Check.tlsProblem(config) { errors.append(problem) }
            for warning in config.warnings { Stderr.write("\(warning.file):\(warning.line):\(warning.column): warning: \(warning.message)\n") }
            guard errors.isEmpty else { throw ConfigErrors(errors) }
            print("\(options.config): configuration OK")
        }

        /// What receiverd would say starting with this certificate and key: BoringSSL reads
        /// them and checks that they belong together (the configuration's own check only
        /// knows PEM). At the position of TLSCertificate.
        static func tlsProblem(_ config: PosternConfig) -> ConfigError? {
            guard let cert = config.receiver.tlsCertificate, let key = config.receiver.tlsKey else { return nil }
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                _ = try NIOSSLContext(configuration: configuration)
                return nil
            } catch {
                let raw = config.sections["receiver"]?.keys["tlscertificate"]?.values.first
                return ConfigError(file: config.path, line: raw?.line ?? 0, column: raw?.column ?? 0,
                                   message: "TLSCertificate \(cert) / TLSKey \(key) cannot be used for STARTTLS: \(error)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the configuration in force, in the file's own syntax (it reads back the same).",
            discussion: """
                Without --all, what the file sets, as written (like postconf -n); with --all, every key \
                of every section with the value in force, defaults included (like postconf). \
                [Sender] SecureHash is shown as a comment unless --show-secrets.

                """ + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Flag(help: "Every key, defaults included.") var all = false
        @Flag(name: .customLong("show-secrets"), help: "Show SecureHash.") var showSecrets = false

        func run() throws {
            let config = try options.load()
            print(ConfigRenderer.render(config, all: all, showSecrets: showSecrets), terminator: "")
        }
    }
}
