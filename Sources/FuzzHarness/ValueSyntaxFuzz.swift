import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// The small value grammars, one per input line: configuration sizes, durations and booleans,
/// endpoints, addresses and networks (rules, XFORWARD ADDR), action lists, xtext (ORCPT,
/// ENVID, XFORWARD), enhanced status codes (replies), IPC lines between the daemons.
///
/// Invariants: what parses, written back by its own formatter, parses to the same value; an
/// address never parses from text a C function saw only part of (NUL).
enum ValueSyntaxFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        for line in lines([UInt8](data)) {
            try check(String(decoding: line, as: UTF8.self))
        }
    }

    static func check(_ text: String) throws(FuzzFailure) {
        if let size = ValueSyntax.parseSize(text) { try expect(size >= 0, "size \(size) from \(show(text))") }
        _ = ValueSyntax.parseBool(text)
        if let duration = ValueSyntax.parseDuration(text) {
            let written = ValueSyntax.format(duration)
            try expect(ValueSyntax.parseDuration(written) == duration, "duration \(show(text)) formats as \(written), which reads differently")
        }
        if let endpoint = try? Endpoint.parse(text) {
            let again = try? Endpoint.parse(endpoint.description)
            try expect(again == endpoint, "endpoint \(show(text)) writes as \(show(endpoint.description)), which reads differently")
        }
        if let address = IPAddress(text) {
            try expect(!text.utf8.contains(0), "\(show(text)) parsed as the address \(address): the text after a NUL was never looked at")
            try expect(IPAddress(address.description) == address, "address \(show(text)) writes as \(address), which reads differently")
        }
        if let network = CIDR(text) {
            let again = CIDR(network.description)
            try expect(again?.network == network.network && again?.prefixLength == network.prefixLength,
                       "network \(show(text)) writes as \(network), which reads differently")
        }
        if let actions = try? ActionList.parse(text) {
            // Header bodies are made safe (no CR, LF, NUL) and trimmed when written, which the
            // next reading may trim again: from the second writing on, the text is stable.
            let once = try? ActionList.parse(actions.description)
            try expect(once != nil, "actions \(show(text)) write as \(show(actions.description)), which does not read")
            let twice = try? ActionList.parse(once!.description)
            try expect(twice?.description == once?.description, "actions \(show(text)): \(show(once!.description)) reads as \(show(twice?.description ?? "nothing"))")
        }
        try expect(XText.decode(XText.encode(text)) == text, "xtext round trip of \(show(text))")
        if let status = EnhancedStatus.parse(Substring(text)) {
            try expect(EnhancedStatus.parse(Substring(status.description)) == status, "status \(show(text)) writes as \(status)")
        }
        if let message = IPCMessage.parse(Substring(text)) {
            var buffer = ByteBuffer()
            message.write(into: &buffer)
            let written = String(buffer: buffer)
            try expect(written.last == "\n", "IPC message without its newline")
            try expect(IPCMessage.parse(Substring(written)) == message || hasCleanedReason(message),
                       "IPC \(show(text)) writes as \(show(written)), which reads differently")
        }
    }

    /// A reason (VERDICT, UNSCANNED) is cut and made printable when written: only the cleaned
    /// text survives.
    static func hasCleanedReason(_ message: IPCMessage) -> Bool {
        let reason: String
        switch message {
        case .unscanned(_, let r): reason = r
        case .verdict(_, let outcomes, _): reason = outcomes.lazy.map(\.reason).first { !$0.isEmpty } ?? ""
        default: return false
        }
        return reason.utf8.count > ReplyTable.maxReason || reason.utf8.contains { $0 < 32 || $0 > 126 }
    }
}
