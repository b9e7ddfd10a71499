import NIOCore
import PosternSMTP
import PosternSpool

/// One mail transaction on a ``ClientConnection``, step by step (RFC 5321 §3.3, RFC 2920,
/// RFC 2033 §4.2).
extension ClientConnection {
    /// How far the envelope got: to the reply to DATA with the recipients the server took,
    /// or nowhere (every outcome is set and the transaction is over).
    enum EnvelopeResult {
        case data(Reply, accepted: [Int])
        case done
    }

    /// The algorithm: check the message can go to this hop at all, send the envelope, then
    /// the data, and read the reply (SMTP) or one reply per accepted recipient (LMTP).
    mutating func transaction(_ job: DeliveryJob, _ outcomes: inout [RecipientOutcome?]) async throws {
        sentData = false
        // 8BITMIME (RFC 6152 §3): convert or refuse 8-bit mail; see ClientConnection+8BITMIME.swift.
        guard let job = sevenBitReady(job, &outcomes) else { return }
        if let refusal = refusalBeforeSending(job) {
            for k in outcomes.indices { outcomes[k] = .failed(refusal) }
            return
        }
        let commands = envelopeCommands(job)
        let result = offers("PIPELINING") ? try await sendPipelined(commands, &outcomes)
                                          : try await sendOneByOne(commands, &outcomes)
        guard case .data(let data, let accepted) = result else { return }
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
        let unchanged = unchangedBody(job.message)
        // The region's descriptor stays open until the replies say the data arrived, or the
        // connection failed; it is closed on the loop that writes it (see below).
        defer { unchanged.map { Self.close($0.region, on: eventLoop) } }
        try await sendMessage(head: job.head, job.message, unchanged: unchanged, chunk: messageChunk)
        try await readDataReplies(for: accepted, &outcomes)
    }

    /// A spooled message that can go out as it is stored: its file region and last octets.
    struct UnchangedBody {
        var region: FileRegion
        var tail: [UInt8]
    }

    /// The message as a region of its queue file for `sendfile` (no copy through the process,
    /// no dot-stuffing pass): when it is long enough to be worth it, is spooled, goes out in
    /// clear, and no line of it starts with a dot. nil sends it through ``DotStuffer``.
    func unchangedBody(_ message: MessageBody) -> UnchangedBody? {
        guard case .spooled(let m) = message, m.count >= sendfileMinimum, !tlsStarted,
              let tail = m.tailIfNoLineStartsWithDot(),
              let region = try? m.fileRegion() else { return nil }
        return UnchangedBody(region: region, tail: tail)
    }

    /// Closes a region's descriptor on `loop`, where NIO reads it for `sendfile`: a write
    /// still pending there (a connection that broke) then fails with EBADF instead of racing
    /// the close.
    static func close(_ region: FileRegion, on loop: any EventLoop) {
        if loop.inEventLoop {
            try? region.fileHandle.close()
        } else {
            loop.execute { try? region.fileHandle.close() }
        }
    }

    /// What this next hop cannot take as it is, before anything is sent: a message over its
    /// SIZE, or an internationalised address without SMTPUTF8 (RFC 6531 §3.4).
    func refusalBeforeSending(_ job: DeliveryJob) -> Reply? {
        if let limit = sizeLimit, job.size > limit {
            return Reply(552, EnhancedStatus(5, 3, 4), "message size \(job.size) exceeds next hop's limit \(limit)")
        }
        let ascii: (String) -> Bool = { $0.utf8.allSatisfy { $0 < 128 } }
        if !offers("SMTPUTF8") && (!ascii(job.envelope.mailFrom) || !job.addresses.allSatisfy(ascii)) {
            return Reply(553, EnhancedStatus(5, 6, 7), "next hop does not offer SMTPUTF8, needed for a non-ASCII address")
        }
        return nil
    }

    func envelopeCommands(_ job: DeliveryJob) -> EnvelopeCommands {
        let e = job.envelope
        return EnvelopeCommands(
            xforward: offers("XFORWARD") ? xforwardCommand(e) : nil,
            mail: "MAIL FROM:<\(e.mailFrom)>\(mailParameters(e, size: job.size))\r\n",
            rcpts: zip(job.recipients, job.addresses).map { "RCPT TO:<\($1)>\(rcptParameters(e.recipients[$0]))\r\n" })
    }

    /// RFC 2920: everything up to DATA in one write, then the replies in order.
    mutating func sendPipelined(_ c: EnvelopeCommands, _ outcomes: inout [RecipientOutcome?]) async throws -> EnvelopeResult {
        try await send((c.xforward ?? "") + c.mail + c.rcpts.joined() + "DATA\r\n")
        if c.xforward != nil { _ = try await read() }   // a refusal only means a poorer log there
        let mail = try await read()
        var rcpts: [Reply] = []
        for _ in c.rcpts { rcpts.append(try await read()) }
        let data = try await read()
        guard mail.isPositive else {
            for k in outcomes.indices { outcomes[k] = outcome(mail) }
            try await abandon(afterData: data)
            return .done
        }
        var accepted: [Int] = []
        for (k, r) in rcpts.enumerated() {
            if r.isPositive { accepted.append(k) } else { outcomes[k] = outcome(r) }
        }
        return .data(data, accepted: accepted)
    }

    /// Without PIPELINING: each command waits for its reply; DATA only when a recipient was taken.
    mutating func sendOneByOne(_ c: EnvelopeCommands, _ outcomes: inout [RecipientOutcome?]) async throws -> EnvelopeResult {
        if let xforward = c.xforward {
            try await send(xforward)
            _ = try await read()
        }
        try await send(c.mail)
        let mail = try await read()
        guard mail.isPositive else {
            for k in outcomes.indices { outcomes[k] = outcome(mail) }
            try await reset()
            return .done
        }
        var accepted: [Int] = []
        for (k, command) in c.rcpts.enumerated() {
            try await send(command)
            let r = try await read()
            if r.isPositive { accepted.append(k) } else { outcomes[k] = outcome(r) }
        }
        guard !accepted.isEmpty else {
            try await reset()
            return .done
        }
        try await send("DATA\r\n")
        return .data(try await read(), accepted: accepted)
    }

    /// The message dot-stuffed and ended by `CRLF.CRLF`, a chunk at a time, each chunk in one
    /// gathering write of slices of it (no copy; ``DotStuffer``); the writes wait while the
    /// socket is full. An `unchanged` message goes out instead as its file region between the
    /// stuffed head and the terminator, in one write of the three (NIO sends the region with
    /// `sendfile`). From here a broken connection may have delivered it: the job is not
    /// retried on a fresh connection. A queue file that cannot be read on the way breaks the
    /// connection too, as the next hop must not take a message cut short.
    mutating func sendMessage(head: ByteBuffer = ByteBuffer(), _ message: MessageBody, unchanged: UnchangedBody? = nil,
                              chunk: Int = MessageBody.chunk) async throws {
        var stuffer = DotStuffer()
        var parts: [ByteBuffer] = []
        stuffer.encode(head, into: &parts)
        sentData = true
        let outbound = self.outbound
        if let unchanged {
            stuffer.passedUnchanged(endingWith: unchanged.tail)
            var end = ByteBuffer()
            stuffer.finish(into: &end)
            try await outbound.write(contentsOf: parts.map(IOData.byteBuffer) + [.fileRegion(unchanged.region), .byteBuffer(end)])
            return
        }
        try await message.forEachChunk(chunk: chunk) { piece, last in
            stuffer.encode(piece, into: &parts)
            if last {
                var end = ByteBuffer()
                stuffer.finish(into: &end)
                parts.append(end)
            }
            try await outbound.write(contentsOf: parts.map(IOData.byteBuffer))
            parts.removeAll(keepingCapacity: true)
        }
    }

    /// SMTP answers the data once for all; LMTP once per accepted recipient, in order
    /// (RFC 2033 §4.2). A break in between keeps the answers already read.
    mutating func readDataReplies(for accepted: [Int], _ outcomes: inout [RecipientOutcome?]) async throws {
        if lmtp {
            for k in accepted { outcomes[k] = outcome(try await read()) }
        } else {
            let r = try await read()
            for k in accepted { outcomes[k] = outcome(r) }
        }
    }

    /// Leaves a transaction that will not deliver: a server that said 354 anyway gets an empty
    /// data section first (SMTP answers it, LMTP owes no reply without recipients), then RSET.
    mutating func abandon(afterData data: Reply) async throws {
        if data.code == 354 {
            try await send(".\r\n")
            if !lmtp { _ = try await read() }
        }
        try await reset()
    }

    func outcome(_ r: Reply) -> RecipientOutcome {
        if r.isPositive { return .delivered(r, nextHopReports: offers("DSN")) }
        if r.isPermanent { return .failed(r) }
        return .deferred(r.description)
    }

    mutating func reset() async throws {
        try await send("RSET\r\n")
        _ = try await read()
    }
}
