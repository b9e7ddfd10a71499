import Crypto
import NIOCore

/// Watches message bytes as they stream to the spool: counts `Received:` fields (loop
/// detection), keeps the values of the loop-guard fields, and hashes the body.
public struct HeaderInspector: Sendable {
    public private(set) var receivedCount = 0
    /// The values of the `X-Postern-Guard:` fields, newest (topmost) first; at most
    /// `maxGuards`, enough to tell any loop from legitimate re-filtering.
    public private(set) var guardValues: [String] = []
    public static let maxGuards = 16
    /// The first `Message-ID:` field's value (unfolded, at most `maxMessageID` octets), for the log.
    public private(set) var messageID: String?
    public static let maxMessageID = 250
    private var inMessageID = false
    public private(set) var inHeaders = true
    private var line: [UInt8] = []
    private var lineOverflow = false
    private var body = SHA256()
    private static let maxLine = 4096

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while inHeaders && i < bytes.count {
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\n") {
                endLine()
            } else if line.count < HeaderInspector.maxLine {
                line.append(b)
            } else {
                lineOverflow = true
            }
        }
        if !inHeaders && i < bytes.count { body.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[i...])) }
    }

    public mutating func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { feed($0) }
    }

    private mutating func endLine() {
        defer { line.removeAll(keepingCapacity: true); lineOverflow = false }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.isEmpty { inHeaders = false; return }
        let continued = line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t")
        if inMessageID && continued {
            let more = Substring(String(decoding: line, as: UTF8.self)).trimmingSpaces
            messageID = String(((messageID ?? "") + more).prefix(Self.maxMessageID))
            return
        }
        inMessageID = false
        if messageID == nil, Self.hasName(line, "message-id") {
            inMessageID = true
            let value = line[("message-id".utf8.count + 1)...]
            messageID = String(Substring(String(decoding: value, as: UTF8.self)).trimmingSpaces.prefix(Self.maxMessageID))
        }
        if Self.hasName(line, "received") { receivedCount += 1 }
        if !lineOverflow, guardValues.count < Self.maxGuards, Self.hasName(line, "x-postern-guard") {
            let colon = line.firstIndex(of: UInt8(ascii: ":"))!
            guardValues.append(String(decoding: line[(colon + 1)...], as: UTF8.self))
        }
    }

    private static func hasName(_ line: [UInt8], _ lowerName: String) -> Bool {
        let n = Array(lowerName.utf8)
        guard line.count > n.count, line[n.count] == UInt8(ascii: ":") else { return false }
        for j in 0..<n.count where (line[j] | 0x20) != n[j] { return false }   // n is lower case
        return true
    }

    /// SHA-256 of the body (empty body if the message has no header/body separator).
    public consuming func bodyHash() -> String { body.finalize().hex }
}
