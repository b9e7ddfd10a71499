import ArgumentParser
import Glibc
import NIOCore
import Shared

/// `posternctl quarantine …`: the mail scannerd kept because a verdict said `quarantine`.
struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "Inspect, release and delete quarantined messages.",
        subcommands: [List.self, Show.self, Release.self, Delete.self])

    static func open(_ o: ConfigOption) throws -> (PosternConfig, Quarantine) {
        let c = try o.load()
        return (c, Quarantine(directory: c.quarantine.path))
    }

    static func check(_ id: String, in q: Quarantine) throws {
        guard QueueID.isValid(id), access(q.path(id), F_OK) == 0 else { throw ValidationError("no message \(id) in the quarantine") }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List quarantined messages (id, size, arrival, sender, recipients, reason).")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            let ids = q.ids()
            for id in ids {
                guard let f = try? SpoolFile.read(path: q.path(id)) else {
                    print("\(id)  (unreadable)")
                    continue
                }
                let e = f.envelope
                print("\(id)  \(e.size)  \(isoTime(e.arrival))  <\(e.mailFrom)>  \(f.verdict?.action ?? "")")
                for route in f.verdict?.routes ?? [] {
                    let reason = f.verdict?.reasons[route.recipient].map { "  \($0)" } ?? ""
                    print("        <\(e.recipients[route.recipient].address)>\(reason)")
                }
            }
            print("-- \(ids.count) message\(ids.count == 1 ? "" : "s")")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a quarantined message's envelope, findings and reasons; with --body, its bytes.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the message too.") var body = false
        @Argument(help: "Queue id.") var id: String

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            try QuarantineCommand.check(id, in: q)
            let (f, message) = try q.read(id)
            print(f.envelope.write(), terminator: "")
            if let v = f.verdict { print(v.write(), terminator: "") }
            if body {
                print("")
                print(String(buffer: message), terminator: "")
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver quarantined messages to their blocked recipients (or --rcpt only), unscanned; the copy stays unless --delete.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Release to this recipient only (repeat for several).") var rcpt: [String] = []
        @Flag(help: "Delete the copy once released.") var delete = false
        @Argument var ids: [String]

        func run() throws {
            let (config, q) = try QuarantineCommand.open(options)
            let layout = SpoolLayout(root: config.general.spoolDir)
            var released: [IPCMessage] = []
            for id in ids {
                try QuarantineCommand.check(id, in: q)
                let newID = try q.release(id, only: rcpt.isEmpty ? nil : rcpt, layout: layout, resolver: RouteResolver(config: config))
                print("\(id): released as \(newID)")
                released.append(.deliver(id: newID))
                if delete { try q.delete(id) }
            }
            QueueCommand.wakeSender(config, released)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete quarantined messages.")
        @OptionGroup var options: ConfigOption
        @Argument var ids: [String]

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            for id in ids {
                try QuarantineCommand.check(id, in: q)
                try q.delete(id)
                print("\(id): deleted from the quarantine")
            }
        }
    }
}
