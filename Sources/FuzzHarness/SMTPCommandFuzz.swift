import NIOCore
import PosternSMTP
import PosternSpool

/// What receiverd does with a client's bytes in command mode: frame them (LineFramer at
/// `maxBufferedLine`), refuse long lines and lines with CR or NUL, parse the rest.
///
/// Invariants: no crash; a parsed command written back in canonical form parses to the same
/// command; MAIL and RCPT paths and parameters come back unchanged from the spool envelope.
enum SMTPCommandFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        var chunker = Chunker(data)
        var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
        var input = ByteBuffer()
        for range in chunker.ranges(data.count) {
            input.writeBytes(UnsafeRawBufferPointer(rebasing: data[range]))
            while let framed = framer.next(from: &input) {
                guard case .line(let line) = framed else { continue }
                guard line.readableBytes <= SMTPDefaults.maxCommandLine,
                      let text = line.getString(at: line.readerIndex, length: line.readableBytes),
                      !text.utf8.contains(13), !text.utf8.contains(0)
                else { continue }
                try check(Substring(text))
            }
        }
    }

    static func check(_ line: Substring) throws(FuzzFailure) {
        // The parameter grammar on its own: what it accepts, written back, reads the same.
        if let space = line.firstIndex(of: " "), let parameters = try? MailParameters.parse(line[space...]) {
            let again = try? MailParameters.parse(Substring(parameters.description))
            try expect(again == parameters, "parameters \(show(parameters.description)) do not re-parse the same")
        }
        let command: Command
        do {
            command = try Command.parse(line)
        } catch {
            return
        }
        guard let canonical = canonical(command) else { return }
        let again: Command
        do {
            again = try Command.parse(Substring(canonical))
        } catch {
            throw FuzzFailure("\(show(String(line))) parsed, its canonical form \(show(canonical)) did not: \(error.hint)")
        }
        try expect(again == command, "\(show(String(line))) and its canonical form \(show(canonical)) differ")
        try checkSpool(command)
    }

    /// The line a client would send for `command`; nil for verbs without arguments.
    static func canonical(_ command: Command) -> String? {
        switch command {
        case .helo(let name): "HELO \(name)"
        case .ehlo(let name): "EHLO \(name)"
        case .lhlo(let name): "LHLO \(name)"
        case .mail(let from, let parameters): "MAIL FROM:<\(from)>" + (parameters.items.isEmpty ? "" : " \(parameters)")
        case .rcpt(let to, let parameters): "RCPT TO:<\(to)>" + (parameters.items.isEmpty ? "" : " \(parameters)")
        case .bdat(let size, let last): "BDAT \(size)" + (last ? " LAST" : "")
        case .xforward(let attributes): "XFORWARD " + attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        default: nil
        }
    }

    /// The spool keeps what receiverd accepted: the envelope written and read back holds the
    /// same path and parameters (a path the spool cannot carry would be a lost or changed message).
    static func checkSpool(_ command: Command) throws(FuzzFailure) {
        var envelope = Envelope(id: "fuzz", arrival: 1, mailFrom: "a@example.org", recipients: [Recipient(address: "b@example.org")])
        switch command {
        case .mail(let from, let parameters):
            envelope.mailFrom = from
            envelope.mailParameters = parameters
        case .rcpt(let to, let parameters):
            envelope.recipients = [Recipient(address: to, parameters: parameters)]
        default:
            return
        }
        let text = envelope.write()
        let lines = text.split(separator: "\n").filter { $0 != "end envelope" }
        let back: Envelope
        do {
            back = try Envelope.parse(lines)
        } catch {
            throw FuzzFailure("envelope for \(command.verb) does not read back: \(error.hint)\n\(show(text, limit: 400))")
        }
        try expect(back.mailFrom == envelope.mailFrom && back.mailParameters == envelope.mailParameters,
                   "MAIL path or parameters changed in the spool: \(show(envelope.mailFrom)) → \(show(back.mailFrom))")
        try expect(back.recipients == envelope.recipients,
                   "RCPT path or parameters changed in the spool: \(show(envelope.recipients.first?.address ?? "")) → \(show(back.recipients.first?.address ?? ""))")
    }
}
