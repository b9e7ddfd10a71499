import NIOCore

/// Messages between the daemons over their unix sockets: one line each. They only carry
/// wake-ups and verdicts; the spool is the source of truth, so a lost message delays mail
/// until the next directory scan but never loses it.
/// - SeeAlso: docs/ipc.md
public enum IPCMessage: Sendable, Hashable {
    /// receiverd → scannerd: a message is waiting in `scan/`.
    case scan(id: String)
    /// scannerd → senderd: a message is waiting in `outgoing/`.
    case deliver(id: String)
    /// posternctl → senderd: try every deferred message now.
    case flush

    public static let maxLine = 256

    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .scan(let id): buffer.writeString("SCAN \(id)\n")
        case .deliver(let id): buffer.writeString("DELIVER \(id)\n")
        case .flush: buffer.writeString("FLUSH\n")
        }
    }

    public static func parse(_ line: Substring) -> IPCMessage? {
        let words = line.split(separator: " ")
        switch (words.first, words.count) {
        case ("SCAN", 2) where QueueID.isValid(String(words[1])): return .scan(id: String(words[1]))
        case ("DELIVER", 2) where QueueID.isValid(String(words[1])): return .deliver(id: String(words[1]))
        case ("FLUSH", 1): return .flush
        default: return nil
        }
    }
}
