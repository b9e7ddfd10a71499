import NIOCore
import PosternSMTP

/// Messages between the daemons over their unix sockets: one line each, but for a verdict,
/// whose line is followed by the verdict section itself. They carry wake-ups and, in
/// synchronous mode, scannerd's verdicts; the spool is the source of truth, so a lost message
/// delays mail until the next directory scan but never loses it. ``IPCReader`` frames them.
/// - SeeAlso: docs/ipc.md
public enum IPCMessage: Sendable, Hashable {
    /// receiverd → scannerd: a message is waiting in `scan/`.
    case scan(id: String)
    /// scannerd → senderd: a message is waiting in `outgoing/`.
    case deliver(id: String)
    /// posternctl → senderd: try every deferred message now.
    case flush
    /// receiverd → scannerd: run the before-queue filters on `incoming/ID`, reading it only, and
    /// answer with ``verdict(id:outcomes:verdict:)`` or ``unscanned(id:reason:)`` on the same
    /// connection (synchronous mode). No deadline crosses: receiverd stops waiting on its own.
    case prescan(id: String)
    /// scannerd → receiverd: each recipient's end-of-data outcome, envelope order (`queued`,
    /// `content-rejected` or `content-tempfailed`, one reason for all refusals), and the verdict
    /// that receiverd writes into its file when it accepts the message.
    case verdict(id: String, outcomes: [Outcome], verdict: Verdict)
    /// scannerd → receiverd: no verdict for this message (unreadable, an internal error):
    /// receiverd applies `ProcessingErrors` at once instead of waiting for its timeout.
    case unscanned(id: String, reason: String)

    /// Room for an outcome per recipient (at most 19 octets each; MaxRecipients is at most
    /// 10000) and a reason.
    public static let maxLine = 256 * 1024
    /// The longest verdict section: a route line per recipient and their header fields fit
    /// many times over; the bound only keeps a broken peer from making receiverd buffer
    /// without end.
    public static let maxVerdict = 16 * 1024 * 1024

    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .scan(let id): buffer.writeString("SCAN \(id)\n")
        case .deliver(let id): buffer.writeString("DELIVER \(id)\n")
        case .flush: buffer.writeString("FLUSH\n")
        case .prescan(let id): buffer.writeString("PRESCAN \(id)\n")
        case .verdict(let id, let outcomes, let verdict):
            let section = verdict.write()
            let reason = outcomes.lazy.map(\.reason).first { !$0.isEmpty } ?? ""
            let words = outcomes.map(\.keyword).joined(separator: ",")
            buffer.writeString("VERDICT \(id) \(words) \(section.utf8.count) \(IPCMessage.printable(reason))\n")
            buffer.writeString(section)
        case .unscanned(let id, let reason):
            buffer.writeString("UNSCANNED \(id) \(IPCMessage.printable(reason))\n")
        }
    }

    /// A reason ends up in an SMTP reply: printable ASCII, and short (file names in it come
    /// from the sender).
    private static func printable(_ text: String) -> String {
        String(decoding: text.utf8.prefix(ReplyTable.maxReason).map { $0 < 32 || $0 > 126 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    /// One message as written, its verdict section included; nil when it is not one.
    public static func parse(_ text: Substring) -> IPCMessage? {
        var buffer = ByteBuffer(string: String(text) + (text.contains("\n") ? "" : "\n"))
        var reader = IPCReader()
        guard let m = try? reader.next(from: &buffer), buffer.readableBytes == 0 else { return nil }
        return m
    }

    /// What one line says: a whole message, or the head of a verdict whose section follows.
    package enum Line: Sendable {
        case message(IPCMessage)
        case verdictHead(VerdictHead)
    }

    /// `VERDICT ID OUTCOME[,OUTCOME…] LENGTH [REASON]`, waiting for its LENGTH octets.
    package struct VerdictHead: Sendable {
        package let id: String
        package let words: [Substring]
        package let length: Int
        package let reason: String

        /// The message, once its verdict section has come; nil when the section is bad.
        package func message(section: String) -> IPCMessage? {
            let outcomes = words.compactMap { Outcome.scanned(keyword: $0, id: id, reason: reason) }
            guard outcomes.count == words.count,
                  let verdict = try? SpoolFile.parseVerdictSection(section, recipients: outcomes.count)
            else { return nil }
            return .verdict(id: id, outcomes: outcomes, verdict: verdict)
        }
    }

    package static func parseLine(_ line: Substring) -> Line? {
        let words = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        let id = words.count > 1 && QueueID.isValid(String(words[1])) ? String(words[1]) : nil
        switch (words.first, words.count, id) {
        case ("SCAN", 2, let id?): return .message(.scan(id: id))
        case ("DELIVER", 2, let id?): return .message(.deliver(id: id))
        case ("FLUSH", 1, _): return .message(.flush)
        case ("PRESCAN", 2, let id?): return .message(.prescan(id: id))
        case ("UNSCANNED", let n, let id?) where n >= 2:
            // The reason is the rest of the line, spaces and all.
            let rest = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            return .message(.unscanned(id: id, reason: rest.count == 3 ? String(rest[2]) : ""))
        case ("VERDICT", let n, let id?) where n >= 4:
            let outcomes = words[2].split(separator: ",", omittingEmptySubsequences: false)
            guard let length = Int(words[3]), length >= 0, length <= maxVerdict, !outcomes.isEmpty else { return nil }
            return .verdictHead(VerdictHead(id: id, words: outcomes, length: length, reason: n == 5 ? String(words[4]) : ""))
        default: return nil
        }
    }
}
