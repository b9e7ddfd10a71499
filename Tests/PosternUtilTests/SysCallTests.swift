import Glibc
import PosternTestSupport
@testable import PosternUtil
import Testing

/// The spool's write wrappers report the errno of the call that failed.
@Suite struct SysCallTests {
    /// A file system that fills up in the middle of a write first returns a short count; only
    /// the next call fails, with ENOSPC. `RLIMIT_FSIZE` makes the same happen on any file
    /// system (a short write up to the limit, then EFBIG), in a child process of its own.
    @Test func aShortPwriteIsContinuedAndTheFailureKeepsItsErrno() async {
        await #expect(processExitsWith: .exitCode(0)) {
            signal(SIGXFSZ, SIG_IGN)
            var limit = rlimit(rlim_cur: 10, rlim_max: 10)
            guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else { exit(3) }
            var template = Array("/tmp/postern-syscall.XXXXXX".utf8CString)
            let fd = mkstemp(&template)
            guard fd >= 0 else { exit(4) }
            unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
            do {
                try SysCall.pwriteAll(fd, [UInt8](repeating: 0x41, count: 100), at: 0, path: "f")
                exit(1)
            } catch {
                exit((error as? SpoolError)?.errno == EFBIG ? 0 : 2)
            }
        }
    }

    @Test func pwriteAllWritesEverything() throws {
        var template = Array("/tmp/postern-syscall.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        #expect(fd >= 0)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd); unlink(path) }
        try SysCall.pwriteAll(fd, Array("hello world".utf8), at: 0, path: path)
        try SysCall.pwriteAll(fd, Array("W".utf8), at: 6, path: path)
        #expect(try SysCall.readFile(path) == Array("hello World".utf8))
    }

    @Test func writeAllOfTwoWritesBothInOrder() throws {
        var template = Array("/tmp/postern-syscall.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        #expect(fd >= 0)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd); unlink(path) }
        let a = Array("hello ".utf8), b = [UInt8](repeating: 0x42, count: 200_000)
        try a.withUnsafeBytes { pa in try b.withUnsafeBytes { pb in try SysCall.writeAll(fd, pa, pb, path: path) } }
        try [UInt8]().withUnsafeBytes { empty in try a.withUnsafeBytes { pa in try SysCall.writeAll(fd, empty, pa, path: path) } }
        #expect(try SysCall.readFile(path) == a + b + a)
    }

    /// As for pwrite: the short write (up to the size limit) is continued, and the call that
    /// fails says why (EFBIG), whichever of the two buffers it stopped in.
    @Test func aShortWritevIsContinuedAndTheFailureKeepsItsErrno() async {
        await #expect(processExitsWith: .exitCode(0)) {
            signal(SIGXFSZ, SIG_IGN)
            var limit = rlimit(rlim_cur: 10, rlim_max: 10)
            guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else { exit(3) }
            for firstLength in [4, 20] {   // the limit falls in the second buffer, then in the first
                var template = Array("/tmp/postern-syscall.XXXXXX".utf8CString)
                let fd = mkstemp(&template)
                guard fd >= 0 else { exit(4) }
                unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
                let a = [UInt8](repeating: 0x41, count: firstLength), b = [UInt8](repeating: 0x42, count: 100)
                do {
                    try a.withUnsafeBytes { pa in try b.withUnsafeBytes { pb in try SysCall.writeAll(fd, pa, pb, path: "f") } }
                    exit(1)
                } catch {
                    if (error as? SpoolError)?.errno != EFBIG { exit(2) }
                }
            }
            exit(0)
        }
    }
}
