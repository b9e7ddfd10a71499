import NIOCore
import PosternSMTP
import PosternUtil

/// Connection, command lines, shutdown, half-close and the clock.
extension ReceiveStateMachine {
    /// The connection is up: 220, or the reason it is refused.
    package mutating func connected(clientIP: String, clientPort: Int, serverIP: String, serverPort: Int,
                                    sessions: Int, shuttingDown: Bool, now: NIODeadline) -> Action {
        session.clientIP = clientIP
        session.clientPort = clientPort
        session.serverIP = serverIP
        session.serverPort = serverPort
        lastRead = now
        if shuttingDown { return close(.shuttingDown) }
        guard let client = IPAddress(clientIP), config.receiver.protectedNetworks.contains(where: { $0.contains(client) }) else {
            return close(.notProtected(client: clientIP))
        }
        if sessions > config.receiver.maxSessions { return close(.tooManyConnections) }
        state = .command
        return .reply([session.greeting])
    }

    /// Bytes came in: the silence clock starts again. False once the session is closing:
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

    /// One framed command line.
    package mutating func commandLine(_ framed: FramedLine) -> Action {
        switch session.handle(framed: framed) {
        case .reply(let r):
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

    /// The clock, once a second: `CommandTimeout` of silence between commands, `DataTimeout`
    /// inside DATA/BDAT, and the minimum data rate (Postfix's `smtpd_min_data_rate`): inside
    /// DATA/BDAT the client has `DataTimeout` plus one second per ``SMTPDefaults/minDataRate``
    /// octets sent, so that a trickle cannot hold a session for ever. While the session waits
    /// on the disk or on scannerd the client's silence does not count.
    package mutating func tick(now: NIODeadline) -> Action {
        switch state {
        case .waiting:
            lastRead = now
            return .none
        case .idle, .closing:
            return .none
        case .command, .data, .chunk:
            break
        }
        let inData = state == .data || state == .chunk
        var expired = now - lastRead > TimeAmount(inData ? config.receiver.dataTimeout : config.receiver.commandTimeout)
        if inData, let start = dataStart {
            let allowed = TimeAmount(config.receiver.dataTimeout) + .seconds(Int64(dataBytes / SMTPDefaults.minDataRate))
            expired = expired || now - start > allowed
        }
        return expired ? close(.timeout) : .none
    }

    mutating func close(_ why: Outcome) -> Action {
        state = .closing
        return .close([table.reply(why)], why: why)
    }
}
