import NIOCore
import PosternSMTP
import PosternUtil

/// Connection, command lines, shutdown, half-close and the clock.
extension ReceiveStateMachine {
    /// The connection is up: 220, or the reason it is refused. `fromClient` counts the
    /// sessions and recent connections of the client's address, this one included (Postfix's
    /// anvil); the limits on them spare `LimitExempt`.
    package mutating func connected(clientIP: String, clientPort: Int, serverIP: String, serverPort: Int,
                                    sessions: Int, fromClient: ClientCounter.Count = .init(sessions: 1, connections: 1),
                                    shuttingDown: Bool, now: NIODeadline) -> Action {
        session.clientIP = clientIP
        session.clientPort = clientPort
        session.serverIP = serverIP
        session.serverPort = serverPort
        lastRead = now
        if shuttingDown { return close(.shuttingDown) }
        let r = config.receiver
        guard let client = IPAddress(clientIP), r.protectedNetworks.contains(where: { $0.contains(client) }) else {
            return close(.notProtected(client: clientIP))
        }
        if sessions > r.maxSessions { return close(.tooManyConnections) }
        if !r.limitExempt.contains(where: { $0.contains(client) }) {
            if r.clientConnectionLimit > 0 && fromClient.sessions > r.clientConnectionLimit {
                return close(.clientConnectionLimit(client: clientIP))
            }
            if r.clientConnectionRateLimit > 0 && fromClient.connections > r.clientConnectionRateLimit {
                return close(.clientConnectionRate(client: clientIP))
            }
        }
        awaitCommand()
        return .reply([session.greeting])
    }

    /// Bytes came in. They do not make the command line being read any less due: only a
    /// whole line does (``commandLine(_:pipelined:)``). False once the session is closing:
    /// the bytes are ignored.
    package mutating func read(now: NIODeadline) -> Bool {
        guard state != .closing else { return false }
        lastRead = now
        return true
    }

    /// What to do with the input now.
    package mutating func next() -> Reading {
        switch state {
        case .command:
            // Graceful shutdown waits for a transaction to end, then closes (DESIGN.md §7).
            if shutdownRequested && !session.inTransaction { return .act(close(.shuttingDown)) }
            return .command
        case .data: return .data
        case .chunk: return .chunk(chunkRemaining)
        case .idle, .waiting, .closing: return .stop
        }
    }

    /// One framed command line, complete with the last read. `pipelined`: the client sent more
    /// behind it before it could have read the reply.
    ///
    /// RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN and NOOP must end a pipelined group ("their success
    /// or failure produces a change of state which the client SMTP must accommodate"), and so
    /// must HELO and LHLO, whose reply is the first that may announce PIPELINING; the message
    /// may follow DATA only once 354 has come. Commands sent behind EHLO come from a client
    /// that did not wait to learn whether it may pipeline; octets sent behind DATA are a message
    /// meant as data: read as commands after a refusal, a `RCPT TO` hidden in it would join the
    /// transaction. Such a client is told so and cut off (Postfix's
    /// `smtpd_forbid_unauth_pipelining`), after the reply it is owed for the command itself;
    /// DATA gets no 354. A BDAT refused for a syntax error (its size unknown) is the same case.
    /// Pipelining where RFC 2920 allows it (MAIL, RCPT, RSET, BDAT and its chunk, commands
    /// behind the end of data) goes on.
        package mutating func commandLine(_ framed: FramedLine, pipelined: Bool = false) -> Action {
        lineStart = lastRead
        let step = session.handle(framed: framed)
        let verb = if case .line = framed { session.lastVerb } else { "" }
        switch step {
        case .reply(let r):
            if pipelined && (verb == "BDAT" || Self.endsAGroup.contains(verb)) { return improperPipelining([r]) }
            // A client over MaxRecipients is not misbehaving (RFC 5321 §4.5.3.1.10).
            if (r.isPermanent || r.isTransient) && r.status != EnhancedStatus(4, 5, 3) {
                session.errors += 1
                if session.errors >= SMTPSession.hardErrorLimit {
                    state = .closing
                    return .close([r, table.reply(.tooManyErrors)], why: .tooManyErrors)
                }
            }
            // RSET, HELO… end a BDAT transaction that did not reach LAST.
            if !session.chunking && (messageOpen || chunkFailure != nil) {
                chunkFailure = nil
                if messageOpen {
                    messageOpen = false
                    return .abortMessage([r])
                }
            }
            return .reply([r])
        case .quit(let r):
            state = .closing
            return .close([r], why: nil)
        case .startData:
            if pipelined { return improperPipelining([]) }
            return .openMessage
        case .chunk(let size, let last):
            chunkRemaining = size
            chunkSize = size
            chunkLast = last
            state = .chunk
            // A chunk outside a transaction is read and thrown away, to stay in step.
            guard session.chunking, !messageOpen, chunkFailure == nil else { return .none }
            return .openMessage
        case .startTLS:
            session.startTLS()
            return .startTLS(SMTPSession.readyToStartTLS)
        }
    }

    /// The commands that must end a pipelined group (RFC 2920 §3.1, with HELO and LHLO).
    static let endsAGroup: Set<String> = ["EHLO", "HELO", "LHLO", "DATA", "VRFY", "EXPN", "NOOP"]

    /// Graceful shutdown: an idle session closes with 421 now; one inside a transaction
    /// finishes it first (its message is either durable with a 250 or still the client's).
    package mutating func shutdown() -> Action {
        shutdownRequested = true
        guard state == .command, !session.inTransaction else { return .none }
        return close(.shuttingDown)
    }

    /// The client shut down its sending side (`shutdown(SHUT_WR)`): "no more commands", not
    /// "gone". False when the session is closing already.
    package mutating func inputEnded() -> Bool {
        inputClosed = true
        return state != .closing
    }

    /// Every command received before a half-close is handled: the session ends once it has
    /// answered them, the message in flight included (RFC 5321 §4.1.1.10, RFC 2920 §3.1).
    package mutating func endOfInput() -> Action {
        switch state {
        case .waiting, .closing: return .flush   // the commit's end comes back to the handler
        case .idle, .command, .data, .chunk:
            state = .closing
            return .close([], why: nil)
        }
    }

    /// The connection is gone.
    package mutating func closed() {
        state = .closing
        messageOpen = false
    }

    /// The clock, once a second. In the command phase the whole next line must be in within
    /// `CommandTimeout` of the previous one (or of the greeting, or of the last reply to a
    /// message): silence and a trickle count alike (Postfix's `smtpd_per_record_deadline`).
    /// Inside DATA/BDAT, `DataTimeout` of silence, and the minimum data rate (Postfix's
    /// `smtpd_min_data_rate`): the client has `DataTimeout` plus one second per
    /// ``SMTPDefaults/minDataRate`` octets sent, so that a trickle cannot hold a session for
    /// ever. While the session waits on the disk or on scannerd the client's time does not
    /// run. In stress mode (`stressed`) the shorter stress timeouts apply.
    package mutating func tick(now: NIODeadline, stressed: Bool = false) -> Action {
        switch state {
        case .waiting:
            lastRead = now
            lineStart = now
            return .none
        case .idle, .closing:
            return .none
        case .command:
            return now - lineStart > TimeAmount(commandTimeout(stressed: stressed)) ? close(.timeout) : .none
        case .data, .chunk:
            break
        }
        let dataTimeout = TimeAmount(dataTimeout(stressed: stressed))
        var expired = now - lastRead > dataTimeout
        if let start = dataStart {
            expired = expired || now - start > dataTimeout + .seconds(Int64(dataBytes / SMTPDefaults.minDataRate))
        }
        return expired ? close(.timeout) : .none
    }

    /// `CommandTimeout`, or in stress mode the shorter `StressCommandTimeout`.
    package func commandTimeout(stressed: Bool) -> Duration {
        stressed ? min(config.receiver.commandTimeout, config.receiver.stressCommandTimeout) : config.receiver.commandTimeout
    }

    /// `DataTimeout`, or in stress mode the shorter `StressDataTimeout`.
    package func dataTimeout(stressed: Bool) -> Duration {
        stressed ? min(config.receiver.dataTimeout, config.receiver.stressDataTimeout) : config.receiver.dataTimeout
    }

    /// The reply the client is owed, then 554 5.5.0 and the end of the session.
    mutating func improperPipelining(_ owed: [Reply]) -> Action {
        state = .closing
        return .close(owed + [table.reply(.improperPipelining)], why: .improperPipelining)
    }

    mutating func close(_ why: Outcome) -> Action {
        state = .closing
        return .close([table.reply(why)], why: why)
    }
}
