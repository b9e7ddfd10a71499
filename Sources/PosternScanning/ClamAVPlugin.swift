import CPosternShims
import Glibc
import Logging
import NIOConcurrencyHelpers
import PosternPolicy
import PosternSpool
import PosternUtil
/// `[ClamAV]`: hands the whole message (header and body) to clamd and reports what it found.
/// clamd parses the MIME structure itself, so attachments are decoded there.
///
/// - To a clamd on a unix socket (`local:`) the message goes as a file: an in-memory file
///   (`memfd_create`) with the message, whose descriptor clamd gets over the socket
///   (`zFILDES`). clamd scans it where it is. Over `zINSTREAM` it would first copy the stream
///   into a temporary file of its own (created, written, removed for every message, on
///   whatever file system its `TemporaryDirectory` is), and the message would cross the
///   socket in chunks.
/// - To a clamd over TCP (`inet:`) it goes as a stream (`zINSTREAM`).
/// - SeeAlso: clamd(8), "INSTREAM", "FILDES"; clamd.conf(5), `StreamMaxLength`, `MaxFileSize`
public struct ClamAVPlugin: ScanPlugin {
    public let name = "clamav"
    public let maxSize: Int
    public let addresses: [ScannerAddress]

    /// clamd accepts chunks of any size up to StreamMaxLength; 64 KiB keeps the copy per chunk
    /// small and the number of writes low.
    public static let chunkSize = 64 << 10
    /// clamd answers one short line; a longer reply is not clamd.
    public static let replyLimit = 4 << 10
    /// The verdict of a message clamd found a signature in.
    public static let infected = FindingVerdict.infected

    public init(addresses: [ScannerAddress], maxSize: Int) {
        self.addresses = addresses
        self.maxSize = maxSize
    }

    public init(settings: ScannerSettings) {
        self.init(addresses: settings.addresses, maxSize: settings.maxSize)
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        let socket = try ScannerSocket.connect(to: addresses, service: "clamd", deadline: deadline)
        guard case .unix(let path) = socket.address.location, !Self.streamOnly.withLockedValue({ $0.contains(path) }) else {
            return try streamExchange(on: socket, request, deadline: deadline)
        }
        switch try fileExchange(on: socket, request, deadline: deadline) {
        case .answered(let finding):
            return finding
        case .noFile:
            // No in-memory file this time (out of memory or descriptors): nothing was sent yet.
            return try streamExchange(on: socket, request, deadline: deadline)
        case .refused(let why):
            // clamd answered, but not with a verdict: it will not take the descriptor (too old
            // for FILDES, or a security profile such as AppArmor's refusing the file it
            // receives). It still scans streams: this message and every later one to that
            // socket go as a stream. A broken connection or a timeout is not a refusal and
            // changes nothing.
            guard ContinuousClock.now < deadline else { throw why }
            Self.streamOnly.withLockedValue { _ = $0.insert(path) }
            Logger(label: "clamav").warning("\(why.message); sending messages to \(socket.peer) as streams (zINSTREAM) from now on")
            let again = try ScannerSocket.connect(to: socket.address, service: "clamd", deadline: deadline)
            return try streamExchange(on: again, request, deadline: deadline)
        }
    }

    /// The unix sockets whose clamd refused a descriptor (``scan(_:deadline:)``), for the life
    /// of the process: a clamd restarted with another profile is tried again after a restart.
    private static let streamOnly = NIOLockedValueBox<Set<String>>([])

    /// How a `zFILDES` request ended, short of a broken connection or a timeout (thrown).
    private enum FileExchange {
        case answered(Finding)
        /// The in-memory file could not be made; nothing was sent.
        case noFile
        /// clamd's reply was not a verdict.
        case refused(PluginError)
    }

    private func fileExchange(on socket: ScannerSocket, _ request: ScanRequest,
                              deadline: ContinuousClock.Instant) throws(PluginError) -> FileExchange {
        guard let file = Self.memoryFile(request.message, name: "postern-" + request.queueID) else {
            return .noFile
        }
        defer { close(file) }
        var sendError: PluginError?
        do {
            try socket.writeAll(Self.fildes, deadline: deadline)
            try socket.sendDescriptor(file, deadline: deadline)
        } catch {
            sendError = error
        }
        switch try answer(on: socket, after: sendError, deadline: deadline) {
        case .success(let finding): return .answered(finding)
        case .failure(let why): return .refused(why)
        }
    }

    private func streamExchange(on socket: ScannerSocket, _ request: ScanRequest,
                                deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        var sendError: PluginError?
        do throws(PluginError) {
            try Self.requestWrites(request.message) { (write) throws(PluginError) in try socket.writeAll(write, deadline: deadline) }
        } catch {
            // The message could not be read: clamd waits for the rest, no answer is coming.
            if request.message.readFailure != nil { throw error }
            sendError = error
        }
        return try answer(on: socket, after: sendError, deadline: deadline).get()
    }

    /// clamd's reply: thrown when none came (the send's error first), a failure when it is not
    /// a verdict. clamd answers and hangs up as soon as StreamMaxLength is exceeded: its reply
    /// says more than our EPIPE. A reply after a failed send is never taken as a verdict.
    private func answer(on socket: ScannerSocket, after sendError: PluginError?,
                        deadline: ContinuousClock.Instant) throws(PluginError) -> Result<Finding, PluginError> {
        let reply: [UInt8]
        do {
            reply = try socket.readReply(limit: Self.replyLimit, deadline: deadline) { $0.last == 0 }
        } catch {
            throw sendError ?? error
        }
        // A clamd killed mid-request says nothing: that is a broken connection, not an answer.
        guard !reply.isEmpty else { throw sendError ?? PluginError("\(socket.peer): closed the connection without a reply") }
        let finding: Finding
        do {
            finding = try Self.parseReply(reply)
        } catch {
            return .failure(PluginError("\(socket.peer): \(error.message)"))
        }
        if let sendError { throw sendError }
        return .success(finding)
    }

    /// The writes of a request for `message`: `zINSTREAM` and the INSTREAM chunks, each a
    /// 4-byte big-endian length and the data, then the zero-length chunk that ends the stream.
    /// The command goes with the first chunk and the end with the last, so a message of one
    /// chunk (most mail) is one write: a write is a system call here and a wake-up for clamd.
    /// The message is read from its file a chunk at a time as the writes go out.
    public static func requestWrites(_ message: StoredMessage, chunkSize: Int = chunkSize,
                                     _ write: ([UInt8]) throws(PluginError) -> Void) throws(PluginError) {
        var first = true
        try message.forEachChunk(size: chunkSize) { (data, last) throws(PluginError) in
            var bytes = first ? command : []
            first = false
            if !data.isEmpty { bytes += bigEndian(UInt32(data.count)) + data }
            if last { bytes += bigEndian(0) }
            try write(bytes)
        }
    }

    /// ``requestWrites(_:chunkSize:_:)`` of a message in memory, as a list.
    public static func requestWrites(_ message: [UInt8], chunkSize: Int = chunkSize) -> [[UInt8]] {
        var writes: [[UInt8]] = []
        try? requestWrites(StoredMessage(message), chunkSize: chunkSize) { writes.append($0) }
        return writes
    }

    private static let command = Array("zINSTREAM\0".utf8)
    private static let fildes = Array("zFILDES\0".utf8)

    /// An in-memory file holding `message`, for `zFILDES`, or nil when none can be made. The
    /// kernel copies the message from its spool file into it (``StoredMessage/copy(to:name:)``):
    /// scannerd does not hold the message for clamd.
    /// clamd's log shows its `name` (`/memfd:postern-QUEUEID (deleted): Eicar-Signature FOUND`).
    static func memoryFile(_ message: StoredMessage, name: String) -> Int32? {
        let fd = postern_memfd(String(decoding: name.utf8.prefix(200), as: UTF8.self))
        guard fd >= 0 else { return nil }
        do {
            try message.copy(to: fd, name: name)
        } catch {
            close(fd)
            return nil
        }
        return fd
    }

    private static func bigEndian(_ n: UInt32) -> [UInt8] {
        [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
    }

    /// The reply after its `stream: ` or `fd[N]: `.
    private static func dropSource(_ text: String) -> Substring? {
        if text.hasPrefix("stream: ") { return text.dropFirst("stream: ".count) }
        guard text.hasPrefix("fd["), let close = text.firstIndex(of: "]"), close > text.index(text.startIndex, offsetBy: 3),
              text[text.index(text.startIndex, offsetBy: 3)..<close].allSatisfy({ ("0"..."9").contains($0) }),
              text[close...].hasPrefix("]: ") else { return nil }
        return text[text.index(close, offsetBy: 3)...]
    }

    /// clamd's reply to `zINSTREAM` or `zFILDES` (clamd(8); no RFC, the grammar is clamd's
    /// `conn_reply*`):
    ///
    ///     reply  = source ": OK" NUL
    ///            / source ": " virus-name [ "(" md5-hex ":" size ")" ] " FOUND" NUL
    ///            / text " ERROR" NUL           ; e.g. "INSTREAM size limit exceeded. ERROR"
    ///     source = "stream" / "fd[" 1*DIGIT "]"
    ///
    /// The `(md5:size)` suffix is what `ExtendedDetectionInfo` (on in Debian's clamd.conf) adds
    /// to clamd's log lines; clamd 1.4 leaves it out of INSTREAM replies, but should a version
    /// send it, it is dropped: rules and logs want the signature name. Errors carry no peer.
    public static func parseReply(_ bytes: [UInt8]) throws(PluginError) -> Finding {
        guard !bytes.isEmpty else { throw PluginError("closed the connection without a reply") }
        let end = bytes.last == 0 ? bytes.count - 1 : bytes.count
        let text = String(decoding: bytes[..<end], as: UTF8.self)
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { throw PluginError.unexpected(text) }
        if text.hasSuffix(" ERROR") { throw PluginError(text) }
        guard let result = Self.dropSource(text) else { throw PluginError.unexpected(text) }
        if result == "OK" { return Finding(plugin: "clamav", verdict: .clean, detail: "clean") }
        guard result.hasSuffix(" FOUND") else { throw PluginError.unexpected(text) }
        var virus = result.dropLast(" FOUND".count)
        if virus.last == ")", let open = virus.lastIndex(of: "("), open != virus.startIndex,
           virus[virus.index(after: open)...].contains(":") {
            virus = virus[..<open]
        }
        guard !virus.isEmpty else { throw PluginError.unexpected(text) }
        return Finding(plugin: "clamav", verdict: infected, names: [String(virus)], detail: "\(infected): \(virus)")
    }
}
