import Logging
import NIOCore
import NIOPosix
import Shared

/// Errors of the client side that end a connection.
struct ClientError: Error, CustomStringConvertible {
    var hint: String
    var description: String { hint }
}

/// One SMTP or LMTP client connection inside `executeThenClose`: greeting, EHLO/LHLO, and
/// transactions with PIPELINING when offered. The same code speaks both protocols; LMTP only
/// differs in LHLO and in one reply per recipient after the data (RFC 2033 §4.2).
/// - SeeAlso: RFC 5321 §3.3, RFC 2920, RFC 2033, Postfix smtp_proto.c
struct ClientConnection {
    var replies: NIOAsyncChannelInboundStream<Reply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let lmtp: Bool
    let hostname: String
    let logger: Logger
    var extensions: [String: String] = [:]
    var sizeLimit: Int?

    mutating func read() async throws -> Reply {
        guard let r = try await replies.next() else { throw ClientError(hint: "lost connection") }
        return r
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Reads the greeting and introduces ourselves; returns the failing reply, if any.
    mutating func open() async throws -> Reply? {
        let greeting = try await read()
        guard greeting.code == 220 else { return greeting }
        try await send("\(lmtp ? "LHLO" : "EHLO") \(hostname)\r\n")
        var hello = try await read()
        if !hello.isPositive && !lmtp {
            try await send("HELO \(hostname)\r\n")
            hello = try await read()
        }
        guard hello.isPositive else { return hello }
        for line in hello.lines.dropFirst() {
            let words = line.split(separator: " ", maxSplits: 1)
            guard let k = words.first else { continue }
            extensions[k.uppercased()] = words.count > 1 ? String(words[1]) : ""
        }
        if let s = extensions["SIZE"], let n = Int(s), n > 0 { sizeLimit = n }
        return nil
    }

    func offers(_ ext: String) -> Bool { extensions[ext] != nil }

    /// One mail transaction. Never throws for the server's refusals, only for I/O trouble.
    mutating func deliver(_ job: DeliveryJob) async throws -> [RecipientOutcome] {
        let e = job.envelope
        if let limit = sizeLimit, job.message.readableBytes > limit {
            let r = Reply(552, EnhancedStatus(5, 3, 4), "message size \(job.message.readableBytes) exceeds next hop's limit \(limit)")
            return job.recipients.map { _ in .failed(r) }
        }
        var commands: [String] = []
        if offers("XFORWARD") {
            commands.append(xforwardCommand(e))
        }
        commands.append("MAIL FROM:<\(e.mailFrom)>\(mailParameters(e, size: job.message.readableBytes))\r\n")
        for i in job.recipients {
            commands.append("RCPT TO:<\(e.recipients[i].address)>\(rcptParameters(e.recipients[i]))\r\n")
        }
        commands.append("DATA\r\n")

        var replies: [Reply] = []
        if offers("PIPELINING") {
            try await send(commands.joined())
            for _ in commands { replies.append(try await read()) }
        } else {
            for c in commands {
                try await send(c)
                let r = try await read()
                replies.append(r)
                if !r.isPositive && (c.hasPrefix("MAIL") || c.hasPrefix("XFORWARD")) { break }
            }
        }
        var index = 0
        if offers("XFORWARD") {
            index += 1   // an XFORWARD refusal is not fatal: the next hop logs less, that is all
        }
        let mail = replies[index]
        index += 1
        guard mail.isPositive else {
            try await reset()
            return job.recipients.map { _ in outcome(mail) }
        }
        var outcomes: [RecipientOutcome?] = []
        var accepted: [Int] = []
        for k in job.recipients.indices {
            let r = index < replies.count ? replies[index] : Reply(451, EnhancedStatus(4, 3, 0), "no reply to RCPT")
            index += 1
            if r.isPositive { accepted.append(k); outcomes.append(nil) } else { outcomes.append(outcome(r)) }
        }
        let data = index < replies.count ? replies[index] : nil
        guard let data, data.code == 354 else {
            if data != nil { try await reset() }
            let r = data ?? Reply(554, EnhancedStatus(5, 5, 1), "no valid recipients")
            return outcomes.map { $0 ?? outcome(r) }
        }
        if accepted.isEmpty {
            // A server that says 354 with no recipient: end the empty data at once.
            try await send(".\r\n")
            _ = try await read()
            return outcomes.map { $0! }
        }
        var stuffer = DotStuffer()
        var payload = ByteBuffer()
        payload.reserveCapacity(job.message.readableBytes + job.message.readableBytes / 64 + 8)
        stuffer.encode(job.message, into: &payload)
        stuffer.finish(into: &payload)
        try await outbound.write(payload)
        if lmtp {
            for k in accepted { outcomes[k] = outcome(try await read()) }
        } else {
            let r = try await read()
            for k in accepted { outcomes[k] = outcome(r) }
        }
        return outcomes.map { $0! }
    }

    private func outcome(_ r: Reply) -> RecipientOutcome {
        if r.isPositive { return .delivered(r) }
        if r.isPermanent { return .failed(r) }
        return .deferred(r.description)
    }

    private mutating func reset() async throws {
        try await send("RSET\r\n")
        _ = try await read()
    }

    /// BODY, SMTPUTF8, RET and ENVID as the client gave them, where the next hop offers the
    /// extension; SIZE recomputed for what we send (RFC 1870).
    private func mailParameters(_ e: Envelope, size: Int) -> String {
        var out = ""
        for p in e.mailParameters.items {
            switch p.keyword {
            case "SIZE": continue
            case "BODY" where offers("8BITMIME"): out += " BODY=\(p.value ?? "")"
            case "SMTPUTF8" where offers("SMTPUTF8"): out += " SMTPUTF8"
            case "RET" where offers("DSN"), "ENVID" where offers("DSN"): out += " \(p.keyword)=\(p.value ?? "")"
            default: continue
            }
        }
        if offers("SIZE") { out += " SIZE=\(size)" }
        return out
    }

    private func rcptParameters(_ r: Recipient) -> String {
        guard offers("DSN") else { return "" }
        var out = ""
        for p in r.parameters.items where p.keyword == "NOTIFY" || p.keyword == "ORCPT" {
            out += " \(p.keyword)=\(p.value ?? "")"
        }
        return out
    }

    /// The original client, as the MTA told us with XFORWARD, or else the MTA itself.
    /// - SeeAlso: Postfix XFORWARD_README
    private func xforwardCommand(_ e: Envelope) -> String {
        let offered = Set((extensions["XFORWARD"] ?? "").uppercased().split(separator: " ").map(String.init))
        var attrs = e.xforward
        if attrs.isEmpty {
            attrs = ["NAME": e.clientName == "unknown" ? "[UNAVAILABLE]" : e.clientName, "ADDR": e.clientIP,
                     "PORT": String(e.clientPort), "HELO": e.helo, "PROTO": e.receivedWith]
        }
        let parts = attrs.keys.sorted().filter { offered.contains($0) && !(attrs[$0] ?? "").isEmpty }
            .map { "\($0)=\(attrs[$0]!)" }
        return "XFORWARD " + (parts.isEmpty ? "NAME=[UNAVAILABLE]" : parts.joined(separator: " ")) + "\r\n"
    }
}
