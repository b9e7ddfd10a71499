import ArgumentParser
import Glibc
import NIOCore
import PosternPolicy
import PosternSpool
import PosternUtil

/// `posternctl queue …`: look at and manage the spool, like Postfix's mailq/postqueue/postsuper.
struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Inspect and manage queued messages.",
        discussion: exitCodesHelp,
        subcommands: [List.self, Show.self, Hold.self, Release.self, Delete.self, Flush.self])

    /// States a queue command looks in, in the order a message passes them.
    static let states: [SpoolState] = [.scan, .outgoing, .deferred, .hold, .corrupt]
    /// What `ALL` means for `delete`: `corrupt/` only when named with --state (Postern never
    /// deletes damaged files by itself, and neither does a sweeping ALL).
    static let deletable: [SpoolState] = [.scan, .outgoing, .deferred, .hold]
    static let holdable: [SpoolState] = [.scan, .outgoing, .deferred]

    static func layout(_ o: ConfigOption) throws -> (PosternConfig, SpoolLayout) {
        let c = try o.load()
        return (c, SpoolLayout(root: c.general.spoolDir))
    }

    /// Ids in `states`, oldest first; a state directory that cannot be read is an error.
    static func ids(in states: [SpoolState], _ layout: SpoolLayout) throws -> [(String, SpoolState)] {
        var all: [(String, SpoolState)] = []
        for state in states {
            do {
                all += try layout.listIDs(in: state).map { ($0, state) }
            } catch {
                throw CtlError(error, "cannot read the spool (SpoolDir \(layout.root))")
            }
        }
        return all
    }

    /// Where message `id` is, among `states`; no such message is EX_NOINPUT.
    static func find(_ id: String, in states: [SpoolState], _ layout: SpoolLayout) throws -> SpoolState {
        try checkSpool(layout)
        if let s = states.first(where: { access(layout.path(id, $0), F_OK) == 0 }) { return s }
        throw CtlError(.noInput, "\(id): no such message in \(states.map { $0.rawValue + "/" }.joined(separator: " "))")
    }

    /// A spool root that is missing or unreadable is an error, not an empty queue.
    static func checkSpool(_ layout: SpoolLayout) throws {
        for state in states where access(layout.directory(state), R_OK | X_OK) != 0 {
            throw CtlError(SpoolError("access", layout.directory(state)), "cannot read the spool (SpoolDir \(layout.root))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List queued messages: id, state, size, arrival, sender; each recipient with its state, route and last error; for deferred mail the next attempt.",
            discussion: exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this state: scan, outgoing, deferred, hold or corrupt (repeat for several).") var state: [String] = []
        @Flag(help: "One JSON document (docs/operations.md).") var json = false

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            let states = try parseStates(state, allowed: QueueCommand.states) ?? QueueCommand.states
            let now = WallClock.seconds
            var entries: [QueueEntry] = []
            for (id, state) in try QueueCommand.ids(in: states, layout) {
                if let entry = try QueueEntry.load(id, state: state, path: layout.path(id, state)) { entries.append(entry) }
            }
            if json {
                print(JSON.object([("spool", .string(layout.root)), ("count", .int(entries.count)),
                                   ("messages", .array(entries.map(\.json)))]).text)
                return
            }
            for entry in entries { print(entry.listText(now: now), terminator: "") }
            print("-- \(entries.count) message\(entries.count == 1 ? "" : "s")")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a message: sender, recipients with their state and last error, arrival, size, client, verdict and findings.",
            discussion: "--body prints the message itself, --raw the spool file as it is.\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the message (header and body, as received) instead.") var body = false
        @Flag(help: "Print the spool file as it is instead.") var raw = false
        @Flag(help: "The envelope and status as one JSON document.") var json = false
        @Argument(help: "Queue id.") var id: String

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            guard [body, raw, json].filter({ $0 }).count <= 1 else { throw CtlError(.usage, "choose one of --body, --raw and --json") }
            let id = try IDArguments.single(self.id)
            let state = try QueueCommand.find(id, in: QueueCommand.states, layout)
            let path = layout.path(id, state)
            if raw { return try copyFile(path) }
            if body {
                return try StoredMessage(file: SpoolFile.read(path: path)).copy(to: 1, name: "stdout")
            }
            guard let entry = try QueueEntry.load(id, state: state, path: path) else {
                throw CtlError(.noInput, "\(id): no such message (it left \(state.rawValue)/ just now)")
            }
            if json { print(entry.json.text) } else { print(entry.showText(now: WallClock.seconds), terminator: "") }
            if entry.file == nil { throw CtlError(.dataErr, "\(id): malformed spool file (\(state.rawValue)/\(id)); --raw shows it") }
        }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put messages on hold: they stay in hold/ until released.",
            discussion: "ALL holds every message in scan/, outgoing/ and deferred/ (or in --state).\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Option(help: "Only messages in this state: scan, outgoing or deferred (repeat for several).") var state: [String] = []
        @OptionGroup var selection: IDArguments

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            let from = try parseStates(state, allowed: QueueCommand.holdable) ?? QueueCommand.holdable
            let ids = try selection.resolve { try QueueCommand.ids(in: from, layout).map(\.0) }
            try forEachID(ids) { id in
                let s = try QueueCommand.move(id, from: from, to: .hold, layout)
                AdminLog.record("\(id): held (\(s.rawValue)/ -> hold/)")
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release held messages: fully scanned ones go to delivery, others to scanning.",
            discussion: "ALL releases every message in hold/.\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @OptionGroup var selection: IDArguments

        func run() throws {
            let (config, layout) = try QueueCommand.layout(options)
            let ids = try selection.resolve { try QueueCommand.ids(in: [.hold], layout).map(\.0) }
            var toSender: [IPCMessage] = []
            var toScanner: [IPCMessage] = []
            try forEachID(ids) { id in
                _ = try QueueCommand.find(id, in: [.hold], layout)
                let verdict = (try? SpoolFile.read(path: layout.path(id, .hold)))?.verdict
                let target: SpoolState = verdict?.readyForDelivery == true ? .outgoing : .scan
                _ = try QueueCommand.move(id, from: [.hold], to: target, layout)
                if target == .outgoing { toSender.append(.deliver(id: id)) } else { toScanner.append(.scan(id: id)) }
                AdminLog.record("\(id): released (hold/ -> \(target.rawValue)/)")
            }
            // Only a wake-up: the daemons find the files by themselves within seconds.
            if !toSender.isEmpty { _ = QueueCommand.wake(config.sender.controlAddress, toSender) }
            if !toScanner.isEmpty { _ = QueueCommand.wake(config.scanner.address, toScanner) }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete messages from the queue (no DSN is sent).",
            discussion: "ALL deletes every message in scan/, outgoing/, deferred/ and hold/ (or in --state; corrupt/ only when named).\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Option(help: "Only messages in this state: scan, outgoing, deferred, hold or corrupt (repeat for several).") var state: [String] = []
        @OptionGroup var selection: IDArguments

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            let named = try parseStates(state, allowed: QueueCommand.states)
            let ids = try selection.resolve { try QueueCommand.ids(in: named ?? QueueCommand.deletable, layout).map(\.0) }
            try forEachID(ids) { id in
                let s = try QueueCommand.find(id, in: named ?? QueueCommand.states, layout)
                let path = layout.path(id, s)
                guard unlink(path) == 0 else { throw CtlError(SpoolError("unlink", path)) }
                AdminLog.record("\(id): deleted from \(s.rawValue)/")
            }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask senderd to try every deferred message now.",
            discussion: "Exits 69 (EX_UNAVAILABLE) when senderd cannot be reached.\n\n" + exitCodesHelp)
        @OptionGroup var options: ConfigOption

        func run() throws {
            let (config, _) = try QueueCommand.layout(options)
            if let problem = QueueCommand.wake(config.sender.controlAddress, [.flush]) {
                throw CtlError(.unavailable, "senderd is not reachable at \(config.sender.controlAddress): \(problem)")
            }
            AdminLog.record("flush of deferred/ requested")
        }
    }

    /// Renames `id` from the first of `from` that has it into `to`; returns where it was.
    static func move(_ id: String, from: [SpoolState], to: SpoolState, _ layout: SpoolLayout) throws -> SpoolState {
        let s = try find(id, in: from, layout)
        guard rename(layout.path(id, s), layout.path(id, to)) == 0 else {
            let e = SpoolError("rename", layout.path(id, s))
            if e.errno == ENOENT { throw CtlError(.noInput, "\(id): no such message in \(s.rawValue)/ (a daemon moved it on just now)") }
            throw CtlError(e)
        }
        return s
    }

    /// Sends `messages` to a daemon's unix socket (plain blocking socket); nil when sent, else
    /// why not.
    static func wake(_ endpoint: Endpoint, _ messages: [IPCMessage]) -> String? {
        guard case .unix(let path) = endpoint.location else { return "not a unix socket" }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        guard let rc = UnixSocketAddress.with(path, { connect(fd, $0, $1) }) else { return "socket path too long" }
        guard rc == 0 else { return String(cString: strerror(errno)) }
        var buffer = ByteBuffer()
        for m in messages { m.write(into: &buffer) }
        let bytes = Array(buffer.readableBytesView)
        return write(fd, bytes, bytes.count) == bytes.count ? nil : String(cString: strerror(errno))
    }
}

/// Copies a file to stdout unchanged (`--raw`), a chunk at a time.
func copyFile(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    do {
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        try SysCall.copyRange(fd, from: 0, count: nil, path: path, to: 1, outName: "stdout")
    } catch let e as SpoolError {
        throw CtlError(e)
    }
}
