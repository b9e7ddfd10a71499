import CPosternShims
import Glibc

/// A failed system call on the spool, with errno; local trouble maps to 4xx replies.
public struct SpoolError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var path: String
    public var errno: Int32
    public init(_ call: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }
    public var description: String { "\(call) \(path): \(String(cString: strerror(errno)))" }
    /// ENOSPC/EDQUOT: the disk is full, the client should try again later (452 4.3.1).
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
}

/// Thin checked wrappers over the system calls the spool uses.
public enum SysCall {
    /// Runs `body` on a new detached thread named `name` (at most 15 octets: `top -H`, `ps -L`
    /// show it); false when no thread could be started.
    public static func detachedThread(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(ThreadBody {
            _ = postern_name_thread(name)
            body()
        })
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            return false
        }
        pthread_detach(handle)
        return true
    }

    private final class ThreadBody {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    public static func mkdirs(_ path: String, mode: mode_t) throws(SpoolError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw SpoolError("mkdir", prefix) }
        }
    }

    public static func writeAll(_ fd: Int32, _ p: UnsafeRawBufferPointer, path: String) throws(SpoolError) {
        var off = 0
        while off < p.count {
            let n = write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError("write", path)
            }
            off += n
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SpoolError) {
        try bytes.withUnsafeBytes { p in Result { () throws(SpoolError) in try writeAll(fd, p, path: path) } }.get()
    }

    /// Reads into `p` from `offset` until it is full or the file ends, continuing short reads
    /// and `EINTR`; returns the octets read, fewer than `p.count` only at the end of the file.
    public static func preadFull(_ fd: Int32, into p: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(SpoolError) -> Int {
        var got = 0
        while got < p.count {
            let n = pread(fd, p.baseAddress! + got, p.count - got, off_t(offset + got))
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError("pread", path)
            }
            if n == 0 { break }
            got += n
        }
        return got
    }

    /// Reads exactly `p.count` octets from `offset`; a file that ends sooner is an `EIO` (a
    /// spool file shorter than its header says).
    public static func preadExactly(_ fd: Int32, into p: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(SpoolError) {
        if try preadFull(fd, into: p, at: offset, path: path) < p.count { throw SpoolError("pread", path, errno: EIO) }
    }

    /// Copies `count` bytes of `fd` from `offset` (nil: to the end of the file) to `out`, a
    /// chunk at a time: memory stays at one chunk whatever the size. `path` and `outName`
    /// name the two ends in errors; a file shorter than `count` is an `EIO` on `path`.
    public static func copyRange(_ fd: Int32, from offset: Int, count: Int?, path: String, to out: Int32, outName: String) throws(SpoolError) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var done = 0
        var atEnd = false
        while !atEnd, count.map({ done < $0 }) ?? true {
            let want = min(chunk.count, count.map { $0 - done } ?? chunk.count)
            let failure: SpoolError? = chunk.withUnsafeMutableBytes { p in
                do throws(SpoolError) {
                    let n = try preadFull(fd, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<want]), at: offset + done, path: path)
                    if n < want && count != nil { throw SpoolError("pread", path, errno: EIO) }
                    try writeAll(out, UnsafeRawBufferPointer(rebasing: p[0..<n]), path: outName)
                    done += n
                    atEnd = n < want
                } catch { return error }
                return nil
            }
            if let failure { throw failure }
        }
    }

    /// Writes `a` then `b` in one `writev`, without copying them together; a short write is
    /// continued (as in ``pwriteAll(_:_:at:path:)``).
    public static func writeAll(_ fd: Int32, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, path: String) throws(SpoolError) {
        var doneA = 0, doneB = 0
        while doneA < a.count || doneB < b.count {
            var iov = [iovec(iov_base: a.baseAddress.map { UnsafeMutableRawPointer(mutating: $0 + doneA) }, iov_len: a.count - doneA),
                       iovec(iov_base: b.baseAddress.map { UnsafeMutableRawPointer(mutating: $0 + doneB) }, iov_len: b.count - doneB)]
            let n = writev(fd, &iov, 2)
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError("writev", path)
            }
            if n == 0 { throw SpoolError("writev", path, errno: EIO) }
            let fromA = min(n, a.count - doneA)
            doneA += fromA
            doneB += n - fromA
        }
    }

    /// A short write is continued, so that a failure is reported with the errno of the call
    /// that failed: a file system filling up mid-write first returns a short count (errno
    /// untouched), and only the next call says ENOSPC (452, not 451).
    public static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(SpoolError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError("pwrite", path)
            }
            if n == 0 { throw SpoolError("pwrite", path, errno: EIO) }
            done += n
        }
    }

    /// Replaces the file at `path` atomically (a temporary name `path.PID.tmp`, then `rename`):
    /// a reader never sees half of it. `sync` fsyncs the file before the rename, for state
    /// that must survive a power failure.
    public static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t, sync: Bool) throws(SpoolError) {
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw SpoolError("open", temporary) }
        var failure: SpoolError?
        bytes.withUnsafeBytes { p in
            do throws(SpoolError) { try writeAll(fd, p, path: temporary) } catch { failure = error }
        }
        if sync && failure == nil && fsync(fd) != 0 { failure = SpoolError("fsync", temporary) }
        if close(fd) != 0 && failure == nil { failure = SpoolError("close", temporary) }
        if failure == nil && rename(temporary, path) != 0 { failure = SpoolError("rename", temporary) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    public static func fsyncDirectory(_ path: String) throws(SpoolError) {
        if postern_fsync_dir(path) != 0 { throw SpoolError("fsync", path) }
    }

    /// Reads a whole file (spool entries, small config files).
    public static func readFile(_ path: String, limit: Int = 1 << 30) throws(SpoolError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        var out = [UInt8]()
        var st = stat()
        if fstat(fd, &st) == 0 { out.reserveCapacity(Int(st.st_size)) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw SpoolError("read", path) }
            if n == 0 { break }
            out += chunk[0..<n]
            if out.count > limit { throw SpoolError("read", path, errno: EFBIG) }
        }
        return out
    }

    public static func listDirectory(_ path: String) throws(SpoolError) -> [String] {
        guard let d = opendir(path) else { throw SpoolError("opendir", path) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Hands a non-Sendable object to another thread and back, where the code guarantees that only
/// one side touches it at a time (e.g. a session does not touch its queue file while the
/// commit runs: it is in `.waiting`).
package struct UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
