import ArgumentParser
import CPosternShims
import Glibc
import PosternPolicy
import PosternSpool
import PosternUtil

/// Set by the signal handlers; read by the supervision loop.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0
nonisolated(unsafe) private var reloadSignal: sig_atomic_t = 0

/// `posternctl run`: the three daemons in the foreground, supervised the way systemd would:
/// posternctl binds their sockets and passes them (LISTEN_FDS/LISTEN_FDNAMES), so the MTA sees
/// no refused connection while one restarts; a daemon that dies is started again; SIGHUP is
/// passed on to all three (like `systemctl reload`); SIGINT or SIGTERM stops all three.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run receiverd, scannerd and senderd in the foreground.",
                                                    discussion: exitCodesHelp)
    @OptionGroup var options: ConfigOption

    /// Grace period before a daemon that ignores SIGTERM is killed (systemd's TimeoutStopSec).
    static let stopTimeout = 30.0
    /// A daemon that dies sooner than this after its start is restarted only after a pause,
    /// as systemd's RestartSec would, so a broken setup does not spin.
    static let quickDeath = 2.0

    struct Child {
        let name: String
        let fds: [Int32]
        let fdNames: [String]
        var pid: pid_t = 0
        var started = 0.0
    }

    func run() throws {
        let config = try options.load()
        let layout = SpoolLayout(root: config.general.spoolDir)
        try layout.createDirectories()
        try SysCall.mkdirs(config.general.runDir, mode: 0o755)

        var receiverFDs: [Int32] = []
        var receiverNames: [String] = []
        for e in config.receiver.address {
            receiverFDs.append(try e.listen())
            receiverNames.append(e.mailProtocol == .lmtp ? "lmtp" : "smtp")
        }
        var children = [
            Child(name: "senderd", fds: [try config.sender.controlAddress.listen()], fdNames: ["sender"]),
            Child(name: "scannerd", fds: [try config.scanner.address.listen()], fdNames: ["scanner"]),
            Child(name: "receiverd", fds: receiverFDs, fdNames: receiverNames),
        ]

        installSignalHandlers()
        let dir = executableDirectory()
        for i in children.indices { try spawn(&children[i], dir: dir) }
        say("started: " + children.map { "\($0.name)[\($0.pid)]" }.joined(separator: " ") +
            " listening on " + config.receiver.address.map(\.description).joined(separator: ", "))

        // Polling (every 50 ms) rather than a blocking waitpid: a signal that arrives between
        // the flag check and the wait can never be missed.
        while stopSignal == 0 {
            if reloadSignal != 0 {
                reloadSignal = 0
                say("SIGHUP: reloading the configuration of all daemons")
                for c in children where c.pid > 0 { kill(c.pid, SIGHUP) }
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == 0 || (pid < 0 && errno == EINTR) {
                usleep(50_000)
                continue
            }
            if pid < 0 { break }
            guard let i = children.firstIndex(where: { $0.pid == pid }) else { continue }
            let lived = monotonicNow() - children[i].started
            say("\(children[i].name)[\(pid)] \(describe(status)); restarting")
            if lived < RunCommand.quickDeath { sleepInterruptibly(seconds: 1) }
            if stopSignal != 0 { children[i].pid = 0; break }
            try spawn(&children[i], dir: dir)
        }
        stopAll(&children)
    }

    private func spawn(_ child: inout Child, dir: String) throws {
        let path = "\(dir)/\(child.name)"
        var env: [String] = []
        var e = environ
        while let p = e.pointee {
            let s = String(cString: p)
            // Not JOURNAL_STREAM: under journald the daemons would leave out their name, and
            // their lines would all be posternctl's.
            if !s.hasPrefix("LISTEN_") && !s.hasPrefix("NOTIFY_SOCKET=") && !s.hasPrefix("WATCHDOG_")
                && !s.hasPrefix("JOURNAL_STREAM=") { env.append(s) }
            e += 1
        }
        env.append("LISTEN_FDS=\(child.fds.count)")
        env.append("LISTEN_FDNAMES=\(child.fdNames.joined(separator: ":"))")
        let argv = [path, "--config", options.config]
        let pid = withCStrings(argv) { cargv in
            withCStrings(env) { cenv in
                child.fds.withUnsafeBufferPointer { fds in
                    postern_spawn_with_fds(path, cargv, cenv, fds.baseAddress, Int32(fds.count))
                }
            }
        }
        guard pid > 0 else { throw SpoolError("fork/exec", path) }
        child.pid = pid
        child.started = monotonicNow()
    }

    private func stopAll(_ children: inout [Child]) {
        say("stopping")
        for c in children where c.pid > 0 { kill(c.pid, SIGTERM) }
        let deadline = monotonicNow() + RunCommand.stopTimeout
        var alive = Set(children.filter { $0.pid > 0 }.map(\.pid))
        while !alive.isEmpty {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 { alive.remove(pid); continue }
            if pid < 0 && errno == ECHILD { break }
            if monotonicNow() > deadline {
                for p in alive { kill(p, SIGKILL) }
                say("killed daemons that ignored SIGTERM")
                while waitpid(-1, &status, 0) > 0 {}
                break
            }
            usleep(50_000)
        }
        say("stopped")
    }

    private func installSignalHandlers() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in stopSignal = 1 }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0   // no SA_RESTART: waitpid must return EINTR
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
        var hup = sigaction()
        hup.__sigaction_handler.sa_handler = { _ in reloadSignal = 1 }
        sigemptyset(&hup.sa_mask)
        hup.sa_flags = 0
        sigaction(SIGHUP, &hup, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    private func sleepInterruptibly(seconds: Double) {
        let end = monotonicNow() + seconds
        while stopSignal == 0 && monotonicNow() < end { usleep(50_000) }
    }

    private func describe(_ status: Int32) -> String {
        if status & 0x7f == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "killed by signal \(status & 0x7f)"
    }

    private func executableDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}

func say(_ s: String) {
    Stderr.write(PosternLogHandler.linePrefix(label: "posternctl", level: .notice) + s + "\n")
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let c = strings.map { strdup($0) } + [nil]
    defer { for p in c { free(p) } }
    return c.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
