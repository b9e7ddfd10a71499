import Glibc
import NIOConcurrencyHelpers
import PosternSMTP
import PosternUtil

/// A message as the plug-ins and the quarantine take it: the message region of its spool
/// file, read only as far as they ask, or bytes in memory (`rules test`, tests).
///
/// - clamd, spamd, rspamd and a quarantine copy take it a chunk at a time
///   (``forEachChunk(size:_:readError:)``) or as a copy the kernel makes (``copy(to:name:)``);
/// - header rules and the headers filter take the header section (``head(upTo:)``);
/// - only a plug-in that parses the whole (the attachments filter) reads it into memory
///   (``bytes()``), once for the scan.
///
/// So scannerd grows with the size of a message only when such a plug-in runs. The file is
/// opened once (a file renamed or removed meanwhile stays readable) and closed with the last
/// reference; the plug-ins of one scan share it from their threads (`pread` only).
public final class StoredMessage: Sendable {
    /// The message's length in octets.
    public let count: Int
    private let path: String
    private let offset: Int
    private let fd: Int32
    /// The whole message once ``bytes()`` read it, or from the start for one in memory.
    private let whole: NIOLockedValueBox<[UInt8]?>
    /// ``headerFields()`` once parsed: the rules, the headers filter and the notices ask.
    private let fields = NIOLockedValueBox<[HeaderField]?>(nil)
    /// The first failure to read the spool file, whoever asked (``readFailure``).
    private let failure = NIOLockedValueBox<SpoolError?>(nil)

    /// The first read of the spool file that failed, if one did. A plug-in turns such a
    /// failure into its own error; the scan asks here, so that a message that could not be
    /// read is scanned again rather than judged by what the plug-ins made of half of it.
    public var readFailure: SpoolError? { failure.withLockedValue { $0 } }

    private func noted(_ error: SpoolError) -> SpoolError {
        failure.withLockedValue { if $0 == nil { $0 = error } }
        return error
    }

    public init(_ bytes: [UInt8]) {
        count = bytes.count
        path = ""
        offset = 0
        fd = -1
        whole = NIOLockedValueBox(bytes)
    }

    /// The message of `file`, whose path it opens now.
    public init(file: SpoolFile) throws(SpoolError) {
        count = file.messageLength
        path = file.path
        offset = file.messageOffset
        fd = open(file.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", file.path) }
        whole = NIOLockedValueBox(nil)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The whole message, read on the first call and kept for the later ones.
    public func bytes() throws(SpoolError) -> [UInt8] {
        let result: Result<[UInt8], SpoolError> = whole.withLockedValue { whole in
            if let whole { return .success(whole) }
            do throws(SpoolError) {
                let read = try read(upTo: count)
                whole = read
                return .success(read)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The first `limit` octets (all of them when the message is shorter).
    public func head(upTo limit: Int) throws(SpoolError) -> [UInt8] {
        if let all = whole.withLockedValue({ $0 }) { return Array(all.prefix(limit)) }
        return try read(upTo: limit)
    }

    /// The header section's fields (``HeaderField/parseSection(_:limit:)``), from the head
    /// alone, read and parsed on the first call.
    public func headerFields() throws(SpoolError) -> [HeaderField] {
        if let known = fields.withLockedValue({ $0 }) { return known }
        let parsed = HeaderField.parseSection(try head(upTo: HeaderField.sectionLimit))
        fields.withLockedValue { $0 = parsed }
        return parsed
    }

    private func read(upTo limit: Int) throws(SpoolError) -> [UInt8] {
        let length = min(limit, count)
        var failure: SpoolError?
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { p, initialized in
            do throws(SpoolError) {
                try SysCall.preadExactly(fd, into: UnsafeMutableRawBufferPointer(p), at: offset, path: path)
                initialized = length
            } catch { failure = error }
        }
        if let failure { throw noted(failure) }
        return bytes
    }

    /// Calls `body` with the message in order, `size` octets at a time, and whether it is the
    /// last piece; a message of no octets is one empty last piece. A read that fails is
    /// thrown as `readError` makes it.
    public func forEachChunk<E: Error>(size: Int, _ body: (UnsafeRawBufferPointer, _ last: Bool) throws(E) -> Void,
                                       readError: (SpoolError) -> E) throws(E) {
        if let all = whole.withLockedValue({ $0 }) {
            try withBytes(all) { (p) throws(E) in
                var start = 0
                repeat {
                    let end = min(start + size, p.count)
                    try body(UnsafeRawBufferPointer(rebasing: p[start..<end]), end == p.count)
                    start = end
                } while start < p.count
            }
            return
        }
        var chunk = [UInt8](repeating: 0, count: min(size, max(count, 1)))
        var done = 0
        repeat {
            let want = min(chunk.count, count - done)
            let failure: SpoolError? = chunk.withUnsafeMutableBytes { p in
                do throws(SpoolError) {
                    try SysCall.preadExactly(fd, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<want]), at: offset + done, path: path)
                } catch { return error }
                return nil
            }
            if let failure { throw readError(noted(failure)) }
            done += want
            try withBytes(chunk) { (p) throws(E) in try body(UnsafeRawBufferPointer(rebasing: p[0..<want]), done == count) }
        } while done < count
    }

    /// Writes the message to `out` (named `name` in errors): from the file by `sendfile`, the
    /// kernel copying page to page, or a chunk at a time where `out` does not take that.
    public func copy(to out: Int32, name: String) throws(SpoolError) {
        if let all = whole.withLockedValue({ $0 }) {
            try SysCall.writeAll(out, all, path: name)
            return
        }
        var from = off_t(offset)
        var left = count
        while left > 0 {
            let n = sendfile(out, fd, &from, left)
            if n > 0 {
                left -= n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EINVAL || errno == ENOSYS) {
                do throws(SpoolError) {
                    try SysCall.copyRange(fd, from: Int(from), count: left, path: path, to: out, outName: name)
                } catch {
                    throw error.path == path ? noted(error) : error
                }
                return
            } else {
                throw n == 0 ? noted(SpoolError("sendfile", path, errno: EIO)) : SpoolError("sendfile", name)
            }
        }
    }
}

/// `withUnsafeBytes` for a body with a typed error.
private func withBytes<E: Error, T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
    try bytes.withUnsafeBytes { p in Result { () throws(E) in try body(p) } }.get()
}
