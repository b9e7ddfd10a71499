import CPosternShims
import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

/// Writes one new message into `incoming/` and publishes it, the way Postfix's cleanup does:
/// `O_EXCL` create, write, envelope and end marker, `fsync`, checked `close`, `rename` into
/// `scan/`, `fsync` of the directory. Only after `commit` returns may the client get its 250.
/// Only receiverd creates spool files.
public final class SpoolWriter {
    public let id: String
    public let layout: SpoolLayout
    private var fd: Int32
    private var pending = ByteBuffer()
    public private(set) var messageBytes = 0
    /// Octets written to the file so far, and how far the kernel was asked to write them back.
    package private(set) var written = 0
    package private(set) var writtenBackTo = SpoolWriter.writebackStart
    /// File length after ``finish(envelope:)``: where a verdict begins.
    private var envelopeEnd = 0
    /// A line of the message starts with a dot (``noteDots(_:)``), and the last octet appended
    /// (a line feed before the first: the message starts a line).
    package private(set) var dotLines = false
    private var lastOctet = UInt8(ascii: "\n")

    public init(layout: SpoolLayout, id: String) throws(SpoolError) {
        self.id = id
        self.layout = layout
        let path = layout.path(id, .incoming)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        if fd < 0 { throw SpoolError("open", path) }
        pending.reserveCapacity(SMTPDefaults.writeChunk)
        pending.writeString(SpoolFile.header(envelopeAt: 0))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Appends message bytes; they reach the file in chunks. Once a chunk's worth is there,
    /// what was pending and the new bytes go out in one writev, not copied together first.
    public func append(_ bytes: inout ByteBuffer) throws(SpoolError) {
        messageBytes += bytes.readableBytes
        bytes.withUnsafeReadableBytes { noteDots($0) }
        if pending.readableBytes + bytes.readableBytes < SMTPDefaults.writeChunk {
            pending.writeBuffer(&bytes)
            return
        }
        let path = layout.path(id, .incoming)
        try pending.withUnsafeReadableBytes { (a) throws(SpoolError) in
            try bytes.withUnsafeReadableBytes { (b) throws(SpoolError) in try SysCall.writeAll(fd, a, b, path: path) }
        }
        written += pending.readableBytes + bytes.readableBytes
        pending.clear()
        bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
        startWriteback()
    }

    /// A large message is written back to disk while it streams in, `writebackChunk` at a
    /// time (`sync_file_range` starts the writes and does not wait), so that the `fsync` before
    /// the 250 only waits for the tail, not for the whole message. The first page is left to
    /// the `fsync`: ``finish(envelope:)`` rewrites the header in it. A failure here is no
    /// failure: the `fsync` is the guarantee.
    private func startWriteback() {
        guard written - writtenBackTo >= Self.writebackChunk else { return }
        _ = postern_start_writeback(fd, off_t(writtenBackTo), off_t(written - writtenBackTo))
        writtenBackTo = written
    }

    /// Looks for a dot that starts a line (the first octet, or one after a line feed, bare or
    /// not: the test senderd would make before sending the file unstuffed), while the bytes are
    /// still in the cache; ``finish(envelope:)`` records the answer in the envelope
    /// (`dot-lines`), so senderd need not read the whole file again to know it. Messages
    /// without such a line are the rule: for them it is one `memchr` pass from dot to dot.
    private func noteDots(_ p: UnsafeRawBufferPointer) {
        guard !dotLines, let base = p.baseAddress, p.count > 0 else { return }
        var from = 0
        while from < p.count, let hit = memchr(base + from, Int32(UInt8(ascii: ".")), p.count - from) {
            let i = base.distance(to: UnsafeRawPointer(hit))
            if (i == 0 ? lastOctet : p[i - 1]) == UInt8(ascii: "\n") {
                dotLines = true
                return
            }
            from = i + 1
        }
        lastOctet = p[p.count - 1]
    }

    /// See ``startWriteback()``.
    package static let writebackChunk = 256 * 1024
    package static let writebackStart = 4096

    public func append(_ s: String) throws(SpoolError) {
        var b = ByteBuffer(string: s)
        try append(&b)
    }

    private func flush() throws(SpoolError) {
        let path = layout.path(id, .incoming)
        try pending.withUnsafeReadableBytes { (p) throws(SpoolError) in try SysCall.writeAll(fd, p, path: path) }
        written += pending.readableBytes
        pending.clear()
    }

    /// Writes the envelope and fixes the header; the file is complete but not yet durable.
    /// The envelope's `dotLines` is set from the bytes this writer wrote, whatever the caller's.
    public func finish(envelope: Envelope) throws(SpoolError) {
        var envelope = envelope
        envelope.dotLines = dotLines
        let text = envelope.write()
        pending.writeString(text)
        try flush()
        let envelopeAt = SpoolFile.headerLength + messageBytes
        envelopeEnd = envelopeAt + text.utf8.count
        try SysCall.pwriteAll(fd, Array(SpoolFile.header(envelopeAt: envelopeAt).utf8), at: 0, path: layout.path(id, .incoming))
    }

    /// Appends a verdict after ``finish(envelope:)``: receiverd's own, as scannerd returned it
    /// (synchronous mode), or one for a file that skips scanning (a quarantine release).
    public func appendVerdict(_ verdict: Verdict) throws(SpoolError) {
        pending.writeString(verdict.write())
        try flush()
    }

    /// Makes the message and envelope durable without publishing the file (synchronous mode
    /// does this while scannerd scans). Blocking.
    public func sync(committer: GroupCommitter) throws(SpoolError) {
        try committer.commit(fd: fd, from: layout.path(id, .incoming), to: nil)
    }

    /// Makes the file durable and moves it to `state`. Blocking: run it off the event loop.
    /// With a `committer`, the fsyncs are shared with concurrent commits; `synced`:
    /// ``sync(committer:)`` made the file durable already, only the verdict appended since is
    /// not, and need not be (docs/spool-format.md).
    public func commit(to state: SpoolState = .scan, committer: GroupCommitter? = nil, synced: Bool = false) throws(SpoolError) {
        let from = layout.path(id, .incoming)
        defer {
            close(fd)   // the data is on disk or the commit failed; close cannot change that
            fd = -1
        }
        if let committer {
            try committer.commit(fd: fd, from: from, to: layout.path(id, state), synced: synced)
            return
        }
        if fsync(fd) != 0 { throw SpoolError("fsync", from) }
        if rename(from, layout.path(id, state)) != 0 { throw SpoolError("rename", from) }
        try SysCall.fsyncDirectory(layout.directory(state))
    }

    /// ``sync(committer:)`` without blocking: the committer's thread does it, the future
    /// completes on `eventLoop`.
    public func sync(committer: GroupCommitter, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        committer.commit(fd: fd, from: layout.path(id, .incoming), to: nil, on: eventLoop)
    }

    /// ``commit(to:committer:synced:)`` without blocking: `prepare` (e.g. a check that the
    /// client is still there) and the verdict's write run on the committer's thread first; the
    /// future completes on `eventLoop`, and the file is closed there whether it is published
    /// or not. The writer must not be used meanwhile.
    public func commit(to state: SpoolState, verdict: Verdict?, committer: GroupCommitter, synced: Bool,
                       prepare: @escaping () throws -> Void, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let from = layout.path(id, .incoming)
        let me = UncheckedBox(self)
        let done = committer.commit(fd: fd, from: from, to: layout.path(id, state), synced: synced, prepare: {
            try prepare()
            if let verdict { try me.value.appendVerdict(verdict) }
        }, on: eventLoop)
        done.whenComplete { _ in
            close(me.value.fd)   // the data is on disk or the commit failed; close cannot change that
            me.value.fd = -1
        }
        return done
    }

    /// Throws the partial file away (client gave up, limit exceeded, local error).
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(layout.path(id, .incoming))
    }
}
