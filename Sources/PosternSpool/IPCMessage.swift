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
    /// receiverd → scannerd: run the before-queue filters on `incoming/ID` and answer with a
    /// ``verdict`` on the same connection (synchronous mode) before `deadline` (CLOCK_MONOTONIC
    /// nanoseconds, ``Monotonic``): receiverd stops waiting then.
    case prescan(id: String, deadline: UInt64)
    /// scannerd → receiverd: the end-of-data reply code for each recipient, in envelope order
    /// (250, 550 or 451), and the reason shown to the client for a refusal.
    case verdict(id: String, codes: [Int], text: String)

    /// Room for a reply code per recipient (4 octets each; MaxRecipients is at most 10000) and
    /// a reason.
    public static let maxLine = 65_536
    /// The longest reason in a VERDICT: it must fit an SMTP reply line (512 octets).
    public static let maxReason = 400

    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .scan(let id): buffer.writeString("SCAN \(id)\n")
        case .deliver(let id): buffer.writeString("DELIVER \(id)\n")
        case .flush: buffer.writeString("FLUSH\n")
        case .prescan(let id, let deadline): buffer.writeString("PRESCAN \(id) \(deadline)\n")
        case .verdict(let id, let codes, let text):
            // The reason ends up in an SMTP reply: printable ASCII, and short (file names in it
            // come from the sender).
            let clean = String(decoding: text.utf8.prefix(IPCMessage.maxReason).map { $0 < 32 || $0 > 126 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
            buffer.writeString("VERDICT \(id) \(codes.map(String.init).joined(separator: ",")) \(clean)\n")
        }
    }

    public static func parse(_ line: Substring) -> IPCMessage? {
        let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        if words.first == "VERDICT", words.count >= 3, QueueID.isValid(String(words[1])) {
            let codes = words[2].split(separator: ",").compactMap { Int($0) }
            guard !codes.isEmpty, codes.allSatisfy({ [250, 451, 550].contains($0) }) else { return nil }
            return .verdict(id: String(words[1]), codes: codes, text: words.count == 4 ? String(words[3]) : "")
        }
        switch (words.first, words.count) {
        case ("SCAN", 2) where QueueID.isValid(String(words[1])): return .scan(id: String(words[1]))
        case ("DELIVER", 2) where QueueID.isValid(String(words[1])): return .deliver(id: String(words[1]))
        case ("FLUSH", 1): return .flush
        case ("PRESCAN", 3) where QueueID.isValid(String(words[1])):
            guard let deadline = UInt64(words[2]) else { return nil }
            return .prescan(id: String(words[1]), deadline: deadline)
        default: return nil
        }
    }
}
