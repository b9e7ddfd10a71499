import ArgumentParser
import Glibc
import NIOCore
import PosternPolicy
import PosternSpool
import PosternUtil

/// `posternctl quarantine …`: the mail scannerd kept because a verdict said `quarantine`.
struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "Inspect, release and delete quarantined messages.",
        discussion: exitCodesHelp,
        subcommands: [List.self, Show.self, Release.self, Delete.self, Digest.self])

    static func open(_ o: ConfigOption) throws -> (PosternConfig, Quarantine) {
        let c = try o.load()
        let q = Quarantine(directory: c.quarantine.path)
        // Missing or unreadable is an error, not an empty quarantine.
        if access(q.directory, R_OK | X_OK) != 0 {
            throw CtlError(SpoolError("access", q.directory), "cannot read the quarantine ([Quarantine] Path)")
        }
        return (c, q)
    }

    static func ids(_ q: Quarantine) throws -> [String] {
        do {
            return try SysCall.listDirectory(q.directory).filter(QueueID.isValid).sorted()
        } catch {
            throw CtlError(error, "cannot read the quarantine ([Quarantine] Path)")
        }
    }

    static func check(_ id: String, in q: Quarantine) throws {
        guard access(q.path(id), F_OK) == 0 else { throw CtlError(.noInput, "\(id): no such message in the quarantine") }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List quarantined messages: id, size, arrival, sender, verdict, and the blocked recipients with the reason.",
            discussion: exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON document (docs/operations.md).") var json = false

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            var entries: [(String, SpoolFile?, String?)] = []
            for id in try QuarantineCommand.ids(q) {
                do {
                    entries.append((id, try SpoolFile.read(path: q.path(id)), nil))
                } catch let e as SpoolError where e.errno == ENOENT {
                    continue   // pruned meanwhile
                } catch {
                    entries.append((id, nil, "\(error)"))
                }
            }
            if json {
                let messages: [JSON] = entries.map { id, f, problem in
                    guard let f else { return .object([("queue_id", .string(id)), ("error", .string(problem ?? ""))]) }
                    let e = f.envelope
                    let blocked = Set((f.verdict?.routes ?? []).map(\.recipient))
                    let released = Set((f.verdict?.routes ?? []).filter { $0.status == .delivered }.map(\.recipient))
                    return .object([
                        ("queue_id", .string(id)), ("arrival_time", .int(Int(e.arrival))), ("message_size", .int(e.size)),
                        ("sender", .string(e.mailFrom)), ("verdict", .optional(f.verdict?.action.description)),
                        ("findings", .array((f.verdict?.findings ?? []).map(JSON.string))),
                        ("recipients", .array(e.recipients.enumerated().map { i, r in
                            .object([("address", .string(r.address)), ("blocked", .bool(blocked.contains(i))),
                                     ("reason", .optional(f.verdict?.reasons[i])), ("released", .bool(released.contains(i)))])
                        })),
                    ])
                }
                print(JSON.object([("path", .string(q.directory)), ("count", .int(entries.count)), ("messages", .array(messages))]).text)
                return
            }
            for (id, f, problem) in entries {
                guard let f else {
                    print("\(id)  (unreadable: \(printable(problem ?? "")))")
                    continue
                }
                let e = f.envelope
                print("\(id)  \(e.size)  \(isoTime(e.arrival))  <\(printable(e.mailFrom))>  \(printable(f.verdict?.action.description ?? ""))")
                for route in f.verdict?.routes ?? [] {
                    let reason = f.verdict?.reasons[route.recipient].map { "  \(printable($0))" } ?? ""
                    let released = route.status == .delivered ? "  (released)" : ""
                    print("        <\(printable(e.recipients[route.recipient].address))>\(reason)\(released)")
                }
            }
            print("-- \(entries.count) message\(entries.count == 1 ? "" : "s")")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a quarantined message's envelope, findings and reasons.",
            discussion: "--body prints the message itself, --raw the file as it is.\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the message (header and body, as received) instead.") var body = false
        @Flag(help: "Print the file as it is instead.") var raw = false
        @Argument(help: "Queue id.") var id: String

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            guard !(body && raw) else { throw CtlError(.usage, "choose one of --body and --raw") }
            let id = try IDArguments.single(self.id)
            try QuarantineCommand.check(id, in: q)
            if raw { return try copyFile(q.path(id)) }
            let f = try SpoolFile.read(path: q.path(id))
            if body { return try StoredMessage(file: f).copy(to: 1, name: "stdout") }
            let entry = QueueEntry(id: id, state: .quarantine, file: f, problem: nil, mtime: 0)
            print(entry.showText(now: WallClock.seconds), terminator: "")
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver quarantined messages to their blocked recipients (or --rcpt only, or --to another address), unscanned; the copy stays unless --delete.",
            discussion: """
            ALL releases every quarantined message. --rcpt naming no recipient of a message exits 67 (EX_NOUSER). \
            --to ADDRESS delivers to that address alone instead of the recipients (the message unchanged, \
            its recipients' DSN requests dropped).

            """ + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Option(help: "Release to this recipient only (repeat for several).") var rcpt: [String] = []
        @Option(help: "Deliver to this address instead of the recipients.") var to: String?
        @Flag(help: "Delete the copy once released.") var delete = false
        @Flag(help: "One JSON document of what was released (docs/operations.md).") var json = false
        @OptionGroup var selection: IDArguments

        func run() throws {
            guard rcpt.isEmpty || to == nil else { throw CtlError(.usage, "choose one of --rcpt and --to") }
            if let to, !to.contains("@") || !ActionList.isAddress(to) {
                throw CtlError(.usage, "--to '\(printable(to, limit: 80))': expected one address such as review@example.com")
            }
            let (config, q) = try QuarantineCommand.open(options)
            let layout = SpoolLayout(root: config.general.spoolDir)
            try QueueCommand.checkSpool(layout)
            let ids = try selection.resolve { try QuarantineCommand.ids(q) }
            var released: [IPCMessage] = []
            var done: [JSON] = []
            let failure = catchExit {
                try forEachID(ids) { id in
                    try QuarantineCommand.check(id, in: q)
                    let copy: Quarantine.Released
                    do {
                        copy = try q.release(id, only: rcpt.isEmpty ? nil : rcpt, to: to, layout: layout, resolver: RouteResolver(config: config))
                    } catch let e as QuarantineError where !rcpt.isEmpty {
                        throw CtlError(.noUser, "\(id): \(e.hint)")
                    } catch let e as QuarantineError {
                        throw CtlError(.dataErr, "\(id): \(e.hint)")
                    }
                    released.append(.deliver(id: copy.id))
                    let whom = copy.recipients.map { "<\(printable($0))>" }.joined(separator: ",")
                    AdminLog.record("\(id): released from the quarantine as \(copy.id)"
                                    + (to != nil ? " to \(whom) instead of its recipients" : rcpt.isEmpty ? "" : " to \(whom)"))
                    if delete {
                        try q.delete(id)
                        AdminLog.record("\(id): deleted from the quarantine")
                    }
                    done.append(.object([("queue_id", .string(id)), ("new_queue_id", .string(copy.id)),
                                         ("recipients", .array(copy.recipients.map(JSON.string))), ("deleted", .bool(delete))]))
                }
            }
            if !released.isEmpty { _ = QueueCommand.wake(config.sender.controlAddress, released) }
            // What was done, also when some id failed (its exit code follows).
            if json { print(JSON.object([("count", .int(done.count)), ("released", .array(done))]).text) }
            if let failure { throw failure }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete quarantined messages.",
            discussion: "ALL deletes every quarantined message.\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @OptionGroup var selection: IDArguments

        func run() throws {
            let (_, q) = try QuarantineCommand.open(options)
            let ids = try selection.resolve { try QuarantineCommand.ids(q) }
            try forEachID(ids) { id in
                try QuarantineCommand.check(id, in: q)
                try q.delete(id)
                AdminLog.record("\(id): deleted from the quarantine")
            }
        }
    }
}
