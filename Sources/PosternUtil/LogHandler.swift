import Glibc
import Logging

/// One line per event on stderr, Postfix style: `receiverd[PID]: QUEUEID: text key=value`.
/// When stderr is journald's stream each line starts with the `<N>` priority prefix of
/// sd-daemon(3), so `journalctl -p` works, and leaves out the time and `receiverd[PID]: `,
/// which journald records itself (journalctl showed the name twice). Anywhere else (a file, a
/// terminal, `posternctl run` under a container runtime) a line starts with an RFC 3339
/// timestamp. Values with spaces, quotes, backslashes or nothing at all are quoted, so
/// `key=value` pairs can be split by a program.
public struct PosternLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let prefix: String
    private let journald: Bool

    public init(label: String, level: Logger.Level) {
        self.logLevel = level
        self.journald = Self.stderrIsJournal()
        self.prefix = journald ? "" : "\(label)[\(getpid())]: "
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let m = event.metadata { all.merge(m) { $1 } }
        var line = (journald ? "<\(Self.priority(event.level))>" : Self.timestamp() + " ") + prefix
        if let id = all.removeValue(forKey: "queue-id") { line += "\(id): " }
        if event.level >= .warning && !journald { line += "\(event.level): " }
        line += event.message.description
        for key in all.keys.sorted() { line += " \(key)=\(Self.quoted("\(all[key]!)"))" }
        // Values can carry what a sender chose (file names, header text): one event, one line.
        line = ASCII.replacing(line, where: ASCII.isControl, with: UInt8(ascii: "?"))
        line += "\n"
        Stderr.write(line)
    }

    /// The start of a line as this handler writes it, for a program that writes its few lines
    /// without swift-log (posternctl run).
    public static func linePrefix(label: String, level: Logger.Level) -> String {
        stderrIsJournal() ? "<\(priority(level))>" : timestamp() + " \(label)[\(getpid())]: "
    }

    /// `value` as is when a space cannot end it, else in double quotes with `"` and `\`
    /// escaped (the free text of a message stays as written, Postfix style).
    package static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && !value.utf8.contains { $0 == 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x09 }
        if plain { return value }
        var out = "\""
        for c in value.unicodeScalars {
            if c == "\"" || c == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }

    /// RFC 3339 local time with microseconds and the numeric offset: `2026-12-06T07:10:00.123456+01:00`.
    package static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        localtime_r(&t, &parts)
        let offset = parts.tm_gmtoff / 60
        let sign = offset < 0 ? "-" : "+"
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let micros = String(Int(ts.tv_nsec) / 1000)
        return Timestamp.format(t, "%Y-%m-%dT%H:%M:%S") + "." + String(repeating: "0", count: 6 - micros.count) + micros
            + sign + two(abs(offset) / 60) + ":" + two(abs(offset) % 60)
    }

    /// Whether stderr is the stream JOURNAL_STREAM (`DEVICE:INODE`) names: the variable is
    /// inherited by children whose stderr goes elsewhere, e.g. into a test's log file.
    /// - SeeAlso: systemd.exec(5), `$JOURNAL_STREAM`
    package static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        var st = stat()
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]),
              fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    package static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Installs the handler for the whole process (once, at start).
    public static func bootstrap(label: String, level: Logger.Level) {
        LoggingSystem.bootstrap { _ in PosternLogHandler(label: label, level: level) }
    }
}
