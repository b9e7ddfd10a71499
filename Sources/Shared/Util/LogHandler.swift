import Glibc
import Logging

/// One line per event on stderr, Postfix style: `receiverd[PID]: QUEUEID: text key=value`.
/// When stderr is journald's stream each line starts with the `<N>` priority prefix of
/// sd-daemon(3), so `journalctl -p` works, and leaves out `receiverd[PID]: `, which journald
/// records itself (journalctl showed it twice).
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
        var line = journald ? "<\(Self.priority(event.level))>" : ""
        line += prefix
        if let id = all.removeValue(forKey: "queue-id") { line += "\(id): " }
        if event.level >= .warning && !journald { line += "\(event.level): " }
        line += event.message.description
        for key in all.keys.sorted() { line += " \(key)=\(all[key]!)" }
        // Values can carry what a sender chose (file names, header text): one event, one line.
        line = ASCII.replacing(line, where: ASCII.isControl, with: UInt8(ascii: "?"))
        line += "\n"
        Stderr.write(line)
    }

    /// Whether stderr is the stream JOURNAL_STREAM (`DEVICE:INODE`) names: the variable is
    /// inherited by children whose stderr goes elsewhere, e.g. into a test's log file.
    /// - SeeAlso: systemd.exec(5), `$JOURNAL_STREAM`
    static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        var st = stat()
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]),
              fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    static func priority(_ level: Logger.Level) -> Int {
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
