import Glibc
import NIOCore
import PosternUtil

/// The message bytes of a queue file, left on disk and read a chunk at a time as they go out,
/// so that a delivery holds a chunk, not the message (Postfix's smtp reads the queue file
/// record by record the same way). The open descriptor keeps the bytes readable when the
/// file is renamed (`deferred/`) or removed meanwhile; it is closed with the last reference.
public final class SpooledMessage: Sendable {
    public let path: String
    /// Where the message begins in the file, and its length.
    public let offset: Int
    public let count: Int
    /// What the envelope says about lines that start with a dot (`dot-lines`); nil: unknown.
    public let dotLines: Bool?
    private let fd: Int32

    /// Takes ownership of `fd`.
    init(fd: Int32, path: String, offset: Int, count: Int, dotLines: Bool? = nil) {
        self.fd = fd
        self.path = path
        self.offset = offset
        self.count = count
        self.dotLines = dotLines
    }

    /// The last reference often goes on an event loop, after the file was removed: the close
    /// that frees its blocks is done elsewhere (``BackgroundCloser``).
    deinit { BackgroundCloser.shared.close(fd) }

    /// Up to `length` message bytes from `from` (counted from the message's start); fewer only
    /// at the end of the message.
    public func read(from: Int, length: Int) throws(SpoolError) -> ByteBuffer {
        let want = max(0, min(length, count - from))
        var buffer = ByteBuffer()
        var failure: SpoolError?
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { p in
            do throws(SpoolError) {
                try SysCall.preadExactly(fd, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<want]), at: offset + from, path: path)
            } catch {
                failure = error
                return 0
            }
            return want
        }
        if let failure { throw failure }
        return buffer
    }

    /// The whole message, for the rare path that needs it at once (8-bit conversion).
    public func readAll() throws(SpoolError) -> ByteBuffer { try read(from: 0, length: count) }

    /// The message's last two octets (one for a one-octet message), when no line of it starts
    /// with a dot: then the stored bytes are the bytes DATA sends (RFC 5321 §4.5.2), and the
    /// last octets tell how to end them. nil when a line does start with one, or the file
    /// cannot be mapped. A dot after a bare LF counts too, and so does one as the very first
    /// octet, whatever went before: a false "no" only costs the copying path.
    ///
    /// When the envelope says whether a line starts with a dot (``dotLines``, from the writer
    /// that saw every octet go in), that answer is taken, and only the last octets are read.
    /// Otherwise the file is read through a mapping of its pages, so no octet is copied; the search
    /// goes from dot to dot (`memchr`), and data without dots (base64, most of a large message)
    /// is passed over at memory speed. A file already shorter than its message (which a read
    /// would report as EIO) is not mapped, as touching a page past its end raises SIGBUS;
    /// Postern itself never shortens a queue file below its envelope.
    public func tailIfNoLineStartsWithDot() -> [UInt8]? {
        if let dotLines {
            // A file cut short fails the read: the copying path then reports it.
            guard !dotLines, count > 0, let tail = try? read(from: max(0, count - 2), length: 2) else { return nil }
            return Array(tail.readableBytesView)
        }
        var st = stat()
        guard count > 0, fstat(fd, &st) == 0, Int(st.st_size) >= offset + count else { return nil }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset - offset % page
        let length = offset + count - start
        guard let base = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(start)), base != MAP_FAILED else { return nil }
        defer { munmap(base, length) }
        let p = UnsafeRawBufferPointer(start: base + (offset - start), count: count)
        let dot = Int32(UInt8(ascii: "."))
        var from = 0
        while from < count, let hit = memchr(p.baseAddress! + from, dot, count - from) {
            let i = p.baseAddress!.distance(to: UnsafeRawPointer(hit))
            if i == 0 || p[i - 1] == UInt8(ascii: "\n") { return nil }
            from = i + 1
        }
        return count == 1 ? [p[0]] : [p[count - 2], p[count - 1]]
    }

    /// The message as a region of the queue file, for `sendfile` (NIO's `FileRegion`), on a
    /// descriptor of its own: the caller closes the handle once the region went out or the
    /// connection ended.
    public func fileRegion() throws(SpoolError) -> FileRegion {
        let copy = dup(fd)
        if copy < 0 { throw SpoolError("dup", path) }
        return FileRegion(fileHandle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy),
                          readerIndex: offset, endIndex: offset + count)
    }
}

extension SpoolFile {
    /// Envelope and verdict, and the message left on disk to be read as it is sent.
    public static func readForDelivery(path: String) throws -> (SpoolFile, SpooledMessage) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        let file: SpoolFile
        do { file = try read(fd: fd, path: path) } catch {
            close(fd)
            throw error
        }
        return (file, SpooledMessage(fd: fd, path: path, offset: file.messageOffset, count: file.messageLength,
                                     dotLines: file.envelope.dotLines))
    }
}
