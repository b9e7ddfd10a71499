import Glibc
import PosternTestSupport
@testable import PosternUtil
import Testing

/// `RunDir/NAME.status` for `posternctl status`.
@Suite struct DaemonStatusTests {
    @Test func roundTripAndLiveness() throws {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        let status = DaemonStatus(name: "senderd", pid: getpid(), state: .ready, since: 1_795_687_549.5)
        try status.write(runDir: dir.path)
        let text = try TextFile.read(DaemonStatus.path(runDir: dir.path, name: "senderd"))
        #expect(text == "pid \(getpid())\nstate ready\nsince 1795687549.5\nversion \(PosternVersion.current)\n")
        #expect(DaemonStatus.parse(text, name: "senderd") == status)
        #expect(DaemonStatus.parse("pid x\nstate ready\nsince 1\n", name: "senderd") == nil)
        #expect(DaemonStatus.parse("pid 5\nstate dancing\nsince 1\n", name: "senderd") == nil)
        // Our own pid is alive but is not senderd (a reused pid must not look like the daemon).
        #expect(!DaemonStatus.isRunning(pid: getpid(), name: "senderd"))
        let comm = try TextFile.read("/proc/self/comm").split(separator: "\n").first.map(String.init) ?? ""
        #expect(DaemonStatus.isRunning(pid: getpid(), name: comm))
        #expect(!DaemonStatus.isRunning(pid: 0x3FFF_FFFF, name: comm))
    }

    @Test func anUnwritableRunDirIsAnError() {
        #expect(throws: SpoolError.self) {
            try DaemonStatus(name: "scannerd", state: .stopping).write(runDir: "/nonexistent/run")
        }
    }
}
