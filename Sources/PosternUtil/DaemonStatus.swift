import Glibc
import Logging

/// What a daemon last said about itself, in `RunDir/NAME.status`, for `posternctl status`.
///
/// A listening socket proves nothing under systemd socket activation (systemd holds it and
/// accepts while the daemon is down), so each daemon writes this small file when it is ready
/// and when it stops, and `posternctl status` checks that the pid in it is still that daemon.
/// ```
/// pid 1234
/// state ready            ; ready | stopping
/// since 1795687549.51    ; when it entered the state, seconds since the epoch
/// version 0.1.0
/// ```
/// - SeeAlso: docs/operations.md ("Status")
public struct DaemonStatus: Sendable, Hashable {
    public enum State: String, Sendable {
        /// Listening and working (sd_notify READY=1).
        case ready
        /// Shutting down (STOPPING=1); after exit the file stays with this state.
        case stopping
    }

    /// The three daemons, in the order mail passes them.
    public static let daemons = ["receiverd", "scannerd", "senderd"]

    public var name: String
    public var pid: pid_t
    public var state: State
    public var since: Double
    public var version: String

    public init(name: String, pid: pid_t = getpid(), state: State, since: Double = WallClock.seconds,
                version: String = PosternVersion.current) {
        self.name = name
        self.pid = pid
        self.state = state
        self.since = since
        self.version = version
    }

    public static func path(runDir: String, name: String) -> String { "\(runDir)/\(name).status" }

    public func text() -> String {
        "pid \(pid)\nstate \(state.rawValue)\nsince \(since)\nversion \(version)\n"
    }

    /// Parses the file's text; nil when a field is missing or malformed.
    public static func parse(_ text: String, name: String) -> DaemonStatus? {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let sp = line.firstIndex(of: " ") else { continue }
            fields[String(line[..<sp])] = String(line[line.index(after: sp)...])
        }
        guard let pid = fields["pid"].flatMap({ pid_t($0) }), pid > 0,
              let state = fields["state"].flatMap(State.init(rawValue:)),
              let since = fields["since"].flatMap(Double.init) else { return nil }
        return DaemonStatus(name: name, pid: pid, state: state, since: since, version: fields["version"] ?? "")
    }

    /// Writes the file atomically (a temporary name, then `rename`): a reader never sees half
    /// of it. Not fsynced: it lives on tmpfs and means nothing after a reboot.
    public func write(runDir: String) throws(SpoolError) {
        try SysCall.replaceFile(DaemonStatus.path(runDir: runDir, name: name), with: Array(text().utf8), mode: 0o644, sync: false)
    }

    /// Writes this daemon's state; a daemon that cannot (RunDir not writable) works on, and
    /// `posternctl status` reports it as unknown.
    public static func publish(_ state: State, runDir: String, logger: Logger) {
        do {
            try DaemonStatus(name: logger.label, state: state).write(runDir: runDir)
        } catch {
            logger.warning("cannot write the status file for posternctl status: \(error)")
        }
    }

    /// Whether `pid` is a live process running `name` (Linux: `/proc/PID/comm`; where that
    /// cannot be read, a live pid is taken as the daemon). Guards against a reused pid.
    public static func isRunning(pid: pid_t, name: String) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let comm = try? TextFile.read("/proc/\(pid)/comm") else { return true }
        // comm is cut to 15 bytes; the daemons' names are shorter.
        return comm.hasSuffix("\n") ? comm.dropLast() == name : comm == name
    }
}
