import ArgumentParser
import Glibc
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil

/// `posternctl rules test`: how the rules resolve for an envelope (and optionally a message),
/// per recipient — every parameter some rule sets, the rules visited, and the route. With a
/// message, the configured plug-ins scan it (as scannerd would, both filter lists) and each
/// recipient's actions are shown with where they came from.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rules", abstract: "Rules tools.", subcommands: [Test.self])

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which rules fire and the value of every parameter they set, per recipient.",
            discussion: exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Option(help: "Envelope sender (\"\" for the null sender).") var from: String = ""
        @Option(help: "A recipient (repeat for several).") var rcpt: [String] = []
        @Option(name: .customLong("client-ip"), help: "Client address.") var clientIP = "127.0.0.1"
        @Option(name: .customLong("client-port"), help: "Client port.") var clientPort = 0
        @Option(name: .customLong("server-ip"), help: "Address the message was received on.") var serverIP = "127.0.0.1"
        @Option(help: "HELO/EHLO name.") var helo = "localhost"
        @Option(name: .customLong("xforward-addr"), help: "Original client from XFORWARD.") var xforwardAddr: String?
        @Option(help: "smtp or lmtp.") var `protocol`: MailProtocol = .smtp
        @Option(help: "A header field \"Name: value\" (repeat for several).") var header: [String] = []
        @Flag(name: .customLong("no-scan"), help: "Do not run the plug-ins on the message.") var noScan = false
        @Argument(help: "A message file (its header fields and size are used; the plug-ins scan it).") var message: String?

        func run() throws {
            let config = try options.load()
            guard !rcpt.isEmpty else { throw CtlError(.usage, "give at least one --rcpt") }
            var headers = header.compactMap { h -> HeaderField? in
                guard let colon = h.firstIndex(of: ":") else { return nil }
                return HeaderField(name: String(h[..<colon]), value: String(h[h.index(after: colon)...].drop(while: { $0 == " " })))
            }
            var size = 0
            var bytes: [UInt8] = []
            if let message {
                bytes = try SysCall.readFile(message)
                size = bytes.count
                headers = HeaderField.parseSection(bytes) + headers
            }
            let envelope = Envelope(
                id: "TEST", arrival: 0, mailProtocol: self.protocol, clientIP: clientIP, clientPort: clientPort, helo: helo,
                serverIP: serverIP, xforward: xforwardAddr.map { ["ADDR": $0] } ?? [:], mailFrom: from,
                recipients: rcpt.map { Recipient(address: $0) }, size: size)
            // Without a message or --header the header is unknown, as before a scan: header:
            // rules then do not apply (rather than evaluate to false).
            let knownHeaders: [HeaderField]? = message == nil && header.isEmpty ? nil : headers
            let resolver = RouteResolver(config: config)
            let engine = ScanEngine(config: config)
            let lists = envelope.recipients.indices.map { engine.allFilters(for: envelope, recipient: $0, headers: knownHeaders) }
            var findings: [Finding] = []
            if message != nil && !noScan {
                var names: [String] = []
                for name in lists.joined() where !names.contains(name) { names.append(name) }
                let request = ScanRequest(queueID: "TEST", message: bytes, mailFrom: from, recipients: rcpt,
                                          clientIP: xforwardAddr ?? clientIP, helo: helo)
                findings = engine.run(names, on: request, deadline: .now + config.scanner.scanTimeout)
                print("findings")
                for f in findings {
                    let score = f.score.map { " score=\($0)" } ?? ""
                    let names = f.names.isEmpty ? "" : " [\(f.names.joined(separator: ", "))]"
                    print("  \(f.plugin): \(f.verdict)\(score)\(names) \(f.detail)")
                    for h in f.headers { print("      adds \(h)") }
                }
            }
            var names = config.rules.parameterNames
            if !names.contains(where: { $0.lowercased() == "senderaddress" }) { names.insert("SenderAddress", at: 0) }
            let ruleText = Dictionary(config.rules.rules.map { ($0.line, $0.text) }, uniquingKeysWith: { first, _ in first })
            for i in envelope.recipients.indices {
                print("recipient <\(envelope.recipients[i].address)>")
                // After a scan, block: and score: terms see this recipient's findings.
                let decision = findings.isEmpty ? nil
                    : engine.decide(findings, filters: lists[i], envelope: envelope, recipient: i, headers: knownHeaders)
                var context = resolver.context(for: envelope, recipient: i, headers: knownHeaders)
                context.blocks = decision?.blocks
                context.score = decision?.score
                for name in names {
                    let r = config.rules.resolve(name, in: context)
                    let value = r.value.map { "\($0)" + (r.setting?.group.map { " (from [Rule:\($0)])" } ?? "") } ?? "(default)"
                    print("  \(name) = \(value)")
                    for t in r.trace {
                        let rule = ruleText[t.line] ?? ""
                        print("      line \(t.line) \(t.result.rawValue)\(t.setParameter ? " sets it" : "")\(t.stopped ? " stop" : ""): \(rule)")
                    }
                }
                if let d = decision {
                    print("  filters: \(lists[i].joined(separator: ", "))")
                    for step in d.steps { print("  \(step.parameter) = \(step.actions)  (\(step.source))") }
                    let extras = d.extras.isEmpty ? "" : ", " + d.extras.map(\.description).joined(separator: ", ")
                    print("  actions: \(d.main.rawValue)\(extras)  score \(d.score)")
                }
                print("  route: \(resolver.route(for: envelope, recipient: i, headers: knownHeaders, blocks: decision?.blocks, score: decision?.score))")
            }
        }
    }
}

/// `--protocol smtp|lmtp`: any other word is a usage error (exit 64), not a third protocol.
extension MailProtocol: ExpressibleByArgument {}
