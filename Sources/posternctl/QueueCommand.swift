import ArgumentParser
import Glibc
import NIOCore
import Shared

/// `posternctl queue …`: look at and manage the spool, like Postfix's mailq/postqueue/postsuper.
struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Inspect and manage queued messages.",
        subcommands: [List.self, Show.self, Hold.self, Release.self, Delete.self, Flush.self])

    /// States a queue command looks in, in the order a message passes them.
    static let states: [SpoolState] = [.scan, .outgoing, .deferred, .hold, .corrupt]

    static func layout(_ o: ConfigOption) throws -> (PosternConfig, SpoolLayout) {
        let c = try o.load()
        return (c, SpoolLayout(root: c.general.spoolDir))
    }

    static func find(_ id: String, _ layout: SpoolLayout) -> SpoolState? {
        states.first { access(layout.path(id, $0), F_OK) == 0 }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queued messages (id, state, size, arrival, sender, recipients).")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            var count = 0
            for state in QueueCommand.states {
                for id in layout.ids(in: state) {
                    count += 1
                    guard let f = try? SpoolFile.read(path: layout.path(id, state)) else {
                        print("\(id)  \(state.rawValue)  (unreadable)")
                        continue
                    }
                    let e = f.envelope
                    print("\(id)  \(state.rawValue)  \(e.size)  \(isoTime(e.arrival))  <\(e.mailFrom)>")
                    if state == .hold, let reason = e.holdReason { print("        (\(reason))") }
                    for (i, r) in e.recipients.enumerated() {
                        let status = f.verdict?.routes.first { $0.recipient == i }.map { " [\(Character(Unicode.Scalar($0.status.rawValue)))] \($0.endpoint)" } ?? ""
                        print("        <\(r.address)>\(status)")
                    }
                }
            }
            print("-- \(count) message\(count == 1 ? "" : "s")")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a message's envelope, verdict and, with --body, its bytes.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the message too.") var body = false
        @Argument(help: "Queue id.") var id: String

        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            guard let state = QueueCommand.find(id, layout) else { throw ValidationError("no message \(id) in the queue") }
            let f = try SpoolFile.read(path: layout.path(id, state))
            print("state \(state.rawValue)")
            print(f.envelope.write(), terminator: "")
            if let v = f.verdict { print(v.write(), terminator: "") } else { print("(not scanned yet)") }
            if body {
                print("")
                print(String(buffer: try f.readMessage()), terminator: "")
            }
        }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put messages on hold: they stay in hold/ until released.")
        @OptionGroup var options: ConfigOption
        @Argument var ids: [String]
        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            for id in ids { try QueueCommand.move(id, from: [.scan, .outgoing, .deferred], to: .hold, layout) }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release held messages (fully scanned ones go to delivery, others to scanning).")
        @OptionGroup var options: ConfigOption
        @Argument var ids: [String]
        func run() throws {
            let (config, layout) = try QueueCommand.layout(options)
            for id in ids {
                let verdict = (try? SpoolFile.read(path: layout.path(id, .hold)))?.verdict
                try QueueCommand.move(id, from: [.hold], to: verdict?.readyForDelivery == true ? .outgoing : .scan, layout)
            }
            QueueCommand.wakeSender(config)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete messages from the queue (no DSN is sent).")
        @OptionGroup var options: ConfigOption
        @Argument var ids: [String]
        func run() throws {
            let (_, layout) = try QueueCommand.layout(options)
            for id in ids {
                guard let s = QueueCommand.find(id, layout) else { throw ValidationError("no message \(id) in the queue") }
                guard unlink(layout.path(id, s)) == 0 else { throw SpoolError("unlink", layout.path(id, s)) }
                print("\(id): deleted from \(s.rawValue)/")
            }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask senderd to try every deferred message now.")
        @OptionGroup var options: ConfigOption
        func run() throws {
            let (config, _) = try QueueCommand.layout(options)
            guard QueueCommand.wakeSender(config) else { throw ValidationError("senderd is not reachable at \(config.sender.controlAddress)") }
            print("flush requested")
        }
    }

    static func move(_ id: String, from: [SpoolState], to: SpoolState, _ layout: SpoolLayout) throws {
        guard QueueID.isValid(id), let s = from.first(where: { access(layout.path(id, $0), F_OK) == 0 }) else {
            throw ValidationError("no message \(id) in \(from.map { $0.rawValue + "/" }.joined(separator: " "))")
        }
        guard rename(layout.path(id, s), layout.path(id, to)) == 0 else { throw SpoolError("rename", layout.path(id, s)) }
        print("\(id): \(s.rawValue)/ -> \(to.rawValue)/")
    }

    /// Sends FLUSH (or `messages`) to senderd's control socket (plain blocking socket).
    @discardableResult
    static func wakeSender(_ config: PosternConfig, _ messages: [IPCMessage] = [.flush]) -> Bool {
        guard case .unix(let path) = config.sender.controlAddress.location else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard UnixSocketAddress.with(path, { connect(fd, $0, $1) }) == 0 else { return false }
        var buffer = ByteBuffer()
        for m in messages { m.write(into: &buffer) }
        let bytes = Array(buffer.readableBytesView)
        return write(fd, bytes, bytes.count) == bytes.count
    }
}

func isoTime(_ t: Double) -> String {
    Timestamp.format(time_t(t), "%Y-%m-%dT%H:%M:%SZ", utc: true)
}
