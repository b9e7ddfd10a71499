import Glibc
import Logging
import PosternTestSupport
@testable import PosternUtil
import Testing

/// journald mode (priority prefix, no `name[PID]: `) only when stderr is JOURNAL_STREAM's stream.
@Suite(.serialized) struct LogHandlerTests {
    @Test func journaldOnlyWhenStderrIsTheNamedStream() {
        defer { unsetenv("JOURNAL_STREAM") }
        unsetenv("JOURNAL_STREAM")
        #expect(!PosternLogHandler.stderrIsJournal())
        var st = stat()
        #expect(fstat(STDERR_FILENO, &st) == 0)
        setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino)", 1)
        #expect(PosternLogHandler.stderrIsJournal())
        // Inherited by a child whose stderr goes elsewhere (a log file): not journald.
        setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino &+ 1)", 1)
        #expect(!PosternLogHandler.stderrIsJournal())
        setenv("JOURNAL_STREAM", "garbage", 1)
        #expect(!PosternLogHandler.stderrIsJournal())
    }

    private func event(_ level: Logger.Level, _ text: String, _ metadata: Logger.Metadata? = nil) -> LogEvent {
        LogEvent(level: level, message: "\(text)", metadata: metadata, source: nil, file: #fileID, function: #function, line: #line)
    }

    /// Postfix's shape: time, `name[PID]: `, the queue id, the level from warning on, the
    /// text, then the fields sorted by key, quoted where a space could not end them; the
    /// event's fields over the handler's; controls become `?`, so one event is one line.
    @Test func aLineIsShapedLikePostfixs() throws {
        var h = PosternLogHandler(label: "scannerd", level: .info, journald: false)
        h[metadataKey: "queue-id"] = "1K2ABC"
        h[metadataKey: "client"] = "old"
        let before = Timestamp.format(time(nil), "%Y-%m-%dT%H:%M:%S")
        let line = String(decoding: h.line(for: event(.warning, "scan failed\r\n", ["reason": "no reply", "client": "[127.0.0.1]:25", "empty": ""])),
                          as: UTF8.self)
        let after = Timestamp.format(time(nil), "%Y-%m-%dT%H:%M:%S")
        let rest = " scannerd[\(getpid())]: 1K2ABC: warning: scan failed?? client=[127.0.0.1]:25 empty=\"\" reason=\"no reply\"\n"
        #expect(line.hasSuffix(rest))
        let stamp = String(line.dropLast(rest.utf8.count))
        #expect(stamp.utf8.count == 32, "\(stamp)")
        #expect([before, after].contains(String(stamp.prefix(19))), "\(stamp)")
        let fraction = stamp.dropFirst(19)
        #expect(fraction.first == "." && fraction.dropFirst().prefix(6).allSatisfy(\.isNumber))
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        let offset = Int(parts.tm_gmtoff) / 60
        let zone = (offset < 0 ? "-" : "+") + String(format2: abs(offset) / 60) + ":" + String(format2: abs(offset) % 60)
        #expect(fraction.hasSuffix(zone), "\(stamp)")
        #expect(PosternLogHandler.timestamp().utf8.count == 32)
    }

    /// Under journald: the priority prefix, no time, no name, no level word.
    @Test func aJournalLineHasThePriorityOnly() {
        let h = PosternLogHandler(label: "senderd", level: .info, journald: true)
        #expect(h.line(for: event(.notice, "to=<a@b>, status=sent (250 ok)", ["queue-id": "1K2XYZ"])) == Array("<5>1K2XYZ: to=<a@b>, status=sent (250 ok)\n".utf8))
        #expect(h.line(for: event(.error, "cannot write")) == Array("<3>cannot write\n".utf8))
    }
}

private extension String {
    init(format2 n: Int) { self = n < 10 ? "0\(n)" : "\(n)" }
}
