import PosternPolicy
/// `[ClamAV]`: hands the whole message (header and body) to clamd over `zINSTREAM` and reports
/// what it found. clamd parses the MIME structure itself, so attachments are decoded there.
/// - SeeAlso: clamd(8), "INSTREAM"; clamd.conf(5), `StreamMaxLength`
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
        var sendError: PluginError?
        do {
            for write in Self.requestWrites(request.message) {
                try socket.writeAll(write, deadline: deadline)
            }
        } catch {
            sendError = error
        }
        // clamd answers and hangs up as soon as StreamMaxLength is exceeded: its reply says
        // more than our EPIPE. A reply after a failed send is never taken as a verdict.
        let reply: [UInt8]
        do {
            reply = try socket.readReply(limit: Self.replyLimit, deadline: deadline) { $0.last == 0 }
        } catch {
            throw sendError ?? error
        }
        let finding: Finding
        do {
            finding = try Self.parseReply(reply)
        } catch {
            throw PluginError("\(socket.peer): \(error.message)")
        }
        if let sendError { throw sendError }
        return finding
    }

    /// The writes of a request for `message`: `zINSTREAM` and the INSTREAM chunks, each a
    /// 4-byte big-endian length and the data, then the zero-length chunk that ends the stream.
    /// The command goes with the first chunk and the end with the last, so a message of one
    /// chunk (most mail) is one write: a write is a system call here and a wake-up for clamd.
    public static func requestWrites(_ message: [UInt8], chunkSize: Int = chunkSize) -> [[UInt8]] {
        var writes: [[UInt8]] = []
        for start in stride(from: 0, to: message.count, by: chunkSize) {
            let data = message[start..<min(start + chunkSize, message.count)]
            writes.append((writes.isEmpty ? command : []) + bigEndian(UInt32(data.count)) + data)
        }
        if writes.isEmpty { writes.append(command) }
        writes[writes.count - 1] += bigEndian(0)
        return writes
    }

    private static let command = Array("zINSTREAM\0".utf8)

    private static func bigEndian(_ n: UInt32) -> [UInt8] {
        [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
    }

    /// clamd's reply to `zINSTREAM` (clamd(8); no RFC, the grammar is clamd's `conn_reply*`):
    ///
    ///     reply = "stream: OK" NUL
    ///           / "stream: " virus-name [ "(" md5-hex ":" size ")" ] " FOUND" NUL
    ///           / text " ERROR" NUL            ; e.g. "INSTREAM size limit exceeded. ERROR"
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
        guard text.hasPrefix("stream: ") else { throw PluginError.unexpected(text) }
        let result = text.dropFirst("stream: ".count)
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
