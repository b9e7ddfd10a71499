import Logging
import NIOCore
import NIOPosix
import PosternSMTP
import PosternSpool

/// Errors of the client side that end a connection.
package struct ClientError: Error, CustomStringConvertible {
    package var hint: String
    package var description: String { hint }
}

/// One SMTP or LMTP client connection inside `executeThenClose`: greeting, EHLO/LHLO, and
/// transactions with PIPELINING when offered. The same code speaks both protocols; LMTP only
/// differs in LHLO and in one reply per recipient after the data (RFC 2033 §4.2).
/// - SeeAlso: RFC 5321 §3.3, RFC 2920, RFC 2033, Postfix smtp_proto.c
package struct ClientConnection {
    package var replies: NIOAsyncChannelInboundStream<Reply>.AsyncIterator
    package let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    package let lmtp: Bool
    package let hostname: String
    package let logger: Logger
    package var extensions: [String: String] = [:]
    package var sizeLimit: Int?
    /// The last transaction got as far as sending the message: a retry could duplicate it.
    private(set) var sentData = false

    package mutating func read() async throws -> Reply {
        guard let r = try await replies.next() else { throw ClientError(hint: "lost connection") }
        return r
    }

    package func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Reads the greeting and introduces ourselves; returns the failing reply, if any.
    mutating func open() async throws -> Reply? {
        let greeting = try await read()
        guard greeting.code == 220 else { return greeting }
        return try await hello(fallback: true)
    }

    /// EHLO or LHLO, and what the server offers; also after STARTTLS, where everything learnt
    /// before is forgotten (RFC 3207 §4.2) and HELO is no answer (`fallback` false).
    package mutating func hello(fallback: Bool) async throws -> Reply? {
        extensions = [:]
        sizeLimit = nil
        try await send("\(lmtp ? "LHLO" : "EHLO") \(hostname)\r\n")
        var hello = try await read()
        if !hello.isPositive && !lmtp && fallback {
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

    package func offers(_ ext: String) -> Bool { extensions[ext] != nil }

    /// What one transaction gave: an outcome per recipient of the job and, when the
    /// connection broke, the error (the connection must not be used again).
    package struct TransactionResult {
        package var outcomes: [RecipientOutcome]
        package var broken: (any Error)?
    }

    /// One mail transaction. The server's refusals become outcomes; when the connection breaks,
    /// recipients that already have their answer keep it (an LMTP server may have delivered to
    /// some) and only the others are deferred.
    package mutating func deliver(_ job: DeliveryJob) async -> TransactionResult {
        var outcomes = [RecipientOutcome?](repeating: nil, count: job.recipients.count)
        do {
            try await transaction(job, &outcomes)
            return TransactionResult(outcomes: outcomes.map { $0 ?? .deferred("no reply from next hop") }, broken: nil)
        } catch {
            let why = "lost connection with next hop: \(ErrorText.describe(error))"
            return TransactionResult(outcomes: outcomes.map { $0 ?? .deferred(why) }, broken: error)
        }
    }

    private mutating func transaction(_ job: DeliveryJob, _ outcomes: inout [RecipientOutcome?]) async throws {
        sentData = false
        // 8BITMIME (RFC 6152 §3): convert or refuse 8-bit mail; see ClientConnection+8BITMIME.swift.
        guard let job = sevenBitReady(job, &outcomes) else { return }
        let e = job.envelope
        if let limit = sizeLimit, job.message.readableBytes > limit {
            let r = Reply(552, EnhancedStatus(5, 3, 4), "message size \(job.message.readableBytes) exceeds next hop's limit \(limit)")
            for k in outcomes.indices { outcomes[k] = .failed(r) }
            return
        }
        // RFC 6531 §3.4: internationalised addresses need a next hop that offers SMTPUTF8;
        // without it the message cannot be delivered there as it is.
        if !offers("SMTPUTF8") && (!e.mailFrom.utf8.allSatisfy({ $0 < 128 })
            || job.addresses.contains(where: { !$0.utf8.allSatisfy({ $0 < 128 }) })) {
            let r = Reply(553, EnhancedStatus(5, 6, 7), "next hop does not offer SMTPUTF8, needed for a non-ASCII address")
            for k in outcomes.indices { outcomes[k] = .failed(r) }
            return
        }
        let xforward = offers("XFORWARD") ? xforwardCommand(e) : nil
        let mailCommand = "MAIL FROM:<\(e.mailFrom)>\(mailParameters(e, size: job.message.readableBytes))\r\n"
        let rcptCommands = zip(job.recipients, job.addresses).map { "RCPT TO:<\($1)>\(rcptParameters(e.recipients[$0]))\r\n" }
        var accepted: [Int] = []
        let data: Reply
        if offers("PIPELINING") {
            // RFC 2920: everything up to DATA in one write, then the replies in order.
            try await send((xforward ?? "") + mailCommand + rcptCommands.joined() + "DATA\r\n")
            if xforward != nil { _ = try await read() }   // a refusal only means a poorer log there
            let mail = try await read()
            var rcpts: [Reply] = []
            for _ in rcptCommands { rcpts.append(try await read()) }
            data = try await read()
            guard mail.isPositive else {
                for k in outcomes.indices { outcomes[k] = outcome(mail) }
                try await abandon(afterData: data)
                return
            }
            for (k, r) in rcpts.enumerated() {
                if r.isPositive { accepted.append(k) } else { outcomes[k] = outcome(r) }
            }
        } else {
            if let xforward {
                try await send(xforward)
                _ = try await read()
            }
            try await send(mailCommand)
            let mail = try await read()
            guard mail.isPositive else {
                for k in outcomes.indices { outcomes[k] = outcome(mail) }
                try await reset()
                return
            }
            for (k, c) in rcptCommands.enumerated() {
                try await send(c)
                let r = try await read()
                if r.isPositive { accepted.append(k) } else { outcomes[k] = outcome(r) }
            }
            guard !accepted.isEmpty else {
                try await reset()
                return
            }
            try await send("DATA\r\n")
            data = try await read()
        }
        guard data.code == 354 else {
            let r = data.isPermanent ? RecipientOutcome.failed(data) : .deferred(data.description)
            for k in accepted { outcomes[k] = r }
            try await abandon(afterData: data)
            return
        }
        guard !accepted.isEmpty else {
            try await abandon(afterData: data)
            return
        }
        var stuffer = DotStuffer()
        var payload = ByteBuffer()
        payload.reserveCapacity(job.message.readableBytes + job.message.readableBytes / 64 + 8)
        stuffer.encode(job.message, into: &payload)
        stuffer.finish(into: &payload)
        sentData = true
        try await outbound.write(payload)
        if lmtp {
            for k in accepted { outcomes[k] = outcome(try await read()) }
        } else {
            let r = try await read()
            for k in accepted { outcomes[k] = outcome(r) }
        }
    }

    /// Leaves a transaction that will not deliver: a server that said 354 anyway gets an empty
    /// data section first (SMTP answers it, LMTP owes no reply without recipients), then RSET.
    private mutating func abandon(afterData data: Reply) async throws {
        if data.code == 354 {
            try await send(".\r\n")
            if !lmtp { _ = try await read() }
        }
        try await reset()
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
        let ours = e.xforward.isEmpty   // values from the MTA are xtext already
        let parts = attrs.keys.sorted().filter { offered.contains($0) && !(attrs[$0] ?? "").isEmpty }
            .map { "\($0)=\(ours ? XText.encode(attrs[$0]!) : attrs[$0]!)" }
        return "XFORWARD " + (parts.isEmpty ? "NAME=[UNAVAILABLE]" : parts.joined(separator: " ")) + "\r\n"
    }
}
