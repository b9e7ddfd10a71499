import Glibc
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
}
