import ArgumentParser
import Glibc
import NIOCore
import PosternSpool
import PosternUtil

/// `posternctl status`: are the daemons up, how full is the spool, what is stuck and why.
///
/// A daemon is up when `RunDir/NAME.status` says `ready` and its pid is that daemon alive:
/// under systemd socket activation a listening socket proves nothing (systemd accepts for a
/// daemon that is down), and under `posternctl run` the same file works the same way.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show whether each daemon is up, the spool's depth per state, the oldest deferred message and the last delivery error.",
        discussion: "Exits 0 when all three daemons are up, 69 (EX_UNAVAILABLE) when one is not.\n\n" + exitCodesHelp)
    @OptionGroup var options: ConfigOption
    @Flag(help: "One JSON document (docs/operations.md).") var json = false

    struct Daemon {
        var name: String
        /// `up`, `stopping`, `down` or `unknown` (no status file).
        var state: String
        var status: DaemonStatus?
        var detail: String
    }

    func run() throws {
        let config = try options.load()
        let layout = SpoolLayout(root: config.general.spoolDir)
        let now = WallClock.seconds
        let daemons = DaemonStatus.daemons.map { StatusCommand.daemon($0, runDir: config.general.runDir) }

        var depth: [(String, Int)] = []
        for state in SpoolState.allCases where state != .quarantine {
            do {
                depth.append((state.rawValue, try layout.listIDs(in: state).count))
            } catch {
                throw CtlError(error, "cannot read the spool (SpoolDir \(layout.root))")
            }
        }
        let quarantine = (try? SysCall.listDirectory(config.quarantine.path))?.filter(QueueID.isValid).count
        let deferred = try layout.listIDs(in: .deferred)
        let oldest = try deferred.first.flatMap { try QueueEntry.load($0, state: .deferred, path: layout.path($0, .deferred)) }
        var last: (entry: QueueEntry, line: QueueEntry.Line, error: DeliveryError)?
        for state in [SpoolState.deferred, .outgoing, .hold] {
            for id in (try? layout.listIDs(in: state)) ?? [] {
                guard let entry = try? QueueEntry.load(id, state: state, path: layout.path(id, state)),
                      let e = entry.lastError, e.error.time > (last?.error.time ?? 0) else { continue }
                last = (entry, e.line, e.error)
            }
        }

        if json {
            print(JSON.object([
                ("version", .string(PosternVersion.current)),
                ("daemons", .array(daemons.map { d in
                    .object([("name", .string(d.name)), ("state", .string(d.state)),
                             ("pid", d.status.map { .int(Int($0.pid)) } ?? .null),
                             ("since", d.status.map { .int(Int($0.since)) } ?? .null),
                             ("version", .optional(d.status?.version)), ("detail", .string(d.detail))])
                })),
                ("spool", .object([("root", .string(layout.root)),
                                   ("states", .object(depth.map { ($0.0, JSON.int($0.1)) } + [("quarantine", .optional(quarantine))]))])),
                ("oldest_deferred", oldest.map { o in
                    .object([("queue_id", .string(o.id)), ("arrival_time", o.file.map { .int(Int($0.envelope.arrival)) } ?? .null),
                             ("age_seconds", o.file.map { .int(Int(now - $0.envelope.arrival)) } ?? .null),
                             ("next_attempt_time", .int(Int(o.mtime)))])
                } ?? .null),
                ("last_delivery_error", last.map { l in
                    .object([("queue_id", .string(l.entry.id)), ("queue_name", .string(l.entry.state.rawValue)),
                             ("recipient", .string(l.line.recipient.address)), ("route", .optional(l.line.route)),
                             ("time", .int(Int(l.error.time))), ("text", .string(l.error.text))])
                } ?? .null),
            ]).text)
        } else {
            for d in daemons { print("\(d.name.padding(10))\(d.state.padding(9))\(d.detail)") }
            print("spool \(layout.root): " + depth.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                  + ", quarantine \(quarantine.map(String.init) ?? "?")")
            if let o = oldest {
                let age = o.file.map { "arrived \(span(now - $0.envelope.arrival)) ago, " } ?? ""
                print("oldest deferred: \(o.id) (\(age)next attempt \(relative(o.mtime - now)))")
            } else {
                print("oldest deferred: none")
            }
            if let l = last {
                print("last delivery error: \(isoTime(l.error.time)) \(l.entry.id) <\(printable(l.line.recipient.address))> \(printable(l.error.text, limit: 300))")
            } else {
                print("last delivery error: none in the queue")
            }
        }
        if daemons.contains(where: { $0.state != "up" }) { throw ExitCodeError(code: .unavailable) }
    }

    static func daemon(_ name: String, runDir: String) -> Daemon {
        let path = DaemonStatus.path(runDir: runDir, name: name)
        let text: String
        do {
            text = try TextFile.read(path)
        } catch {
            let why = error.code == ENOENT ? "no \(path): not started since boot, or RunDir not writable" : "\(error)"
            return Daemon(name: name, state: "unknown", status: nil, detail: why)
        }
        guard let status = DaemonStatus.parse(text, name: name) else {
            return Daemon(name: name, state: "unknown", status: nil, detail: "\(path) is malformed")
        }
        let since = "since \(isoTime(status.since)) (\(span(WallClock.seconds - status.since)))"
        guard DaemonStatus.isRunning(pid: status.pid, name: name) else {
            let last = status.state == .stopping ? "stopped \(since)" : "died (its last state was \(status.state.rawValue) \(since))"
            return Daemon(name: name, state: "down", status: status, detail: "pid \(status.pid) \(last)")
        }
        let state = status.state == .ready ? "up" : "stopping"
        return Daemon(name: name, state: state, status: status, detail: "pid \(status.pid) \(since), version \(status.version)")
    }
}
