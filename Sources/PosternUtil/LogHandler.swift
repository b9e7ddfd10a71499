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
        self.init(label: label, level: level, journald: Self.stderrIsJournal())
    }

    package init(label: String, level: Logger.Level, journald: Bool) {
        self.logLevel = level
        self.journald = journald
        self.prefix = journald ? "" : "\(label)[\(getpid())]: "
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let bytes = line(for: event)
        bytes.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }   // one write(2): lines never interleave
    }

    /// The line for `event`, with its LF. Built as bytes, in one buffer: every daemon writes
    /// a few lines per message.
    package func line(for event: LogEvent) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        if journald {
            out.append(0x3C)
            out.append(UInt8(ascii: "0") + UInt8(Self.priority(event.level)))
            out.append(0x3E)
        } else {
            Self.appendTimestamp(to: &out)
            out.append(0x20)
        }
        out += prefix.utf8
        // The event's metadata over the handler's; the queue id leads the line.
        let extra = event.metadata
        if let id = extra?["queue-id"] ?? metadata["queue-id"] {
            out += "\(id)".utf8
            out += ": ".utf8
        }
        if event.level >= .warning && !journald {
            out += "\(event.level)".utf8
            out += ": ".utf8
        }
        out += event.message.description.utf8
        var fields: [(key: String, value: Logger.Metadata.Value)] = []
        for (k, v) in metadata where k != "queue-id" && extra?[k] == nil { fields.append((k, v)) }
        if let extra { for (k, v) in extra where k != "queue-id" { fields.append((k, v)) } }
        fields.sort { $0.key < $1.key }
        for (k, v) in fields {
            out.append(0x20)
            out += k.utf8
            out.append(0x3D)
            out += Self.quoted("\(v)").utf8
        }
        // Values can carry what a sender chose (file names, header text): one event, one line.
        for i in out.indices where ASCII.isControl(out[i]) { out[i] = UInt8(ascii: "?") }
        out.append(0x0A)
        return out
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
        var out: [UInt8] = []
        appendTimestamp(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// ``timestamp()`` appended to `out`, from one clock reading and one `localtime_r`.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        localtime_r(&t, &parts)
        func digits(_ n: Int, _ width: Int) {
            var d = 1
            for _ in 1..<width { d *= 10 }
            var n = n
            while d > 0 {
                out.append(UInt8(ascii: "0") + UInt8(n / d % 10))
                n %= d
                d /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out.append(0x2D)
        digits(Int(parts.tm_mon) + 1, 2)
        out.append(0x2D)
        digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        out.append(0x3A)
        digits(Int(parts.tm_min), 2)
        out.append(0x3A)
        digits(Int(parts.tm_sec), 2)
        out.append(0x2E)
        digits(Int(ts.tv_nsec) / 1000, 6)
        let offset = parts.tm_gmtoff / 60
        out.append(offset < 0 ? 0x2D : 0x2B)
        digits(abs(offset) / 60, 2)
        out.append(0x3A)
        digits(abs(offset) % 60, 2)
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
