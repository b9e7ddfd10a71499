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
    package let outbound: NIOAsyncChannelOutboundWriter<IOData>
    /// The connection's loop: the one that writes a file region, and so the one that may close
    /// its descriptor afterwards.
    package let eventLoop: any EventLoop
    package let lmtp: Bool
    package let hostname: String
    package let logger: Logger
    package var extensions: [String: String] = [:]
    /// The attributes the server's XFORWARD offers, upper-cased (read once per EHLO, not per message).
    package var xforwardOffered: Set<String> = []
    package var sizeLimit: Int?
    /// Octets of a spooled message read and written at a time (tests make it small).
    package var messageChunk = MessageBody.chunk
    /// A spooled message this long or longer goes out from its queue file by `sendfile` when no
    /// line of it needs a dot added; a shorter one costs more syscalls that way than the one
    /// read and gathering write of the copying path. Tests make it small.
    package var sendfileMinimum = MessageBody.chunk
    /// STARTTLS was sent: from then on the bytes pass through TLS, which takes no file region.
    package internal(set) var tlsStarted = false
    /// The last transaction got as far as sending the message: a retry could duplicate it.
    package internal(set) var sentData = false

    package mutating func read() async throws -> Reply {
        guard let r = try await replies.next() else { throw ClientError(hint: "lost connection") }
        return r
    }

    package func send(_ text: String) async throws {
        try await outbound.write(.byteBuffer(ByteBuffer(string: text)))
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
        xforwardOffered = []
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
        if let x = extensions["XFORWARD"] { xforwardOffered = Set(x.uppercased().split(separator: " ").map(String.init)) }
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
}
