import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// What one SMTP/LMTP session decides, without any I/O (STYLE item 3; NIO's
/// `NIOTypedHTTPServerUpgraderStateMachine` and Hummingbird's `HTTPConnectionStateHandler` are
/// the models): each event method returns the ``Action`` that ``SMTPServerHandler`` carries
/// out, and the handler reports back how file operations ended. Timeouts and the minimum data
/// rate are decided here from the `now` each event brings, so tests drive them with a fake clock.
///
/// The command table itself is ``SMTPSession``; every end-of-data and session-closing reply
/// comes from the ``ReplyTable``.
package struct ReceiveStateMachine {
    package enum State: Equatable {
        /// Before the connection is accepted.
        case idle
        /// Reading command lines.
        case command
        /// Between 354 and end of data.
        case data
        /// Reading the octets of a BDAT chunk.
        case chunk
        /// The message is being made durable (and, in synchronous mode, scanned).
        case waiting
        /// The session is over; nothing more is read.
        case closing
    }

    /// What the handler does next.
    package enum Action: Equatable {
        case none
        /// Write these replies (they are flushed with the rest of a pipelined group).
        case reply([Reply])
        /// Write these replies, flush and close; an open queue file is thrown away. `why` is
        /// for the log.
        case close([Reply], why: Outcome?)
        /// DATA or the first BDAT chunk: create the queue file, then report
        /// ``messageOpened()`` or ``openFailed(_:)``.
        case openMessage
        /// A BDAT transaction ended without its last chunk (RSET, HELO…), or the client left
        /// while the message was scanned: throw the file away, then write the replies.
        case abortMessage([Reply])
        /// Write and flush this 220, drop every byte read so far, start TLS (RFC 3207 §4.2).
        case startTLS(Reply)
        /// The last BDAT chunk is in: finish the decoder, then report ``endOfData(_:)``.
        case endOfChunks
        /// The message passed the end-of-data checks: write its envelope, then report
        /// ``envelopeWritten(_:)`` or ``writeFailed(_:)``.
        case writeEnvelope
        /// Synchronous mode: make the file durable and ask scannerd for the verdict meanwhile;
        /// report ``verdict(_:)``.
        case askScanner
        /// Append `verdict` (if any), make the file durable and rename it to `state`; report
        /// ``committed()`` or ``commitFailed(_:)``.
        case commit(SpoolState, verdict: Verdict?)
        /// The transaction ends without a message: throw the file away, log, write the replies.
        case refuse(Ending)
        /// The transaction ends with the message committed: log, write the replies.
        case finish(Ending)
        /// Flush what was written (the client closed its sending side; answers still go out).
        case flush
    }

    /// How a transaction ended: each recipient's outcome and what is written for them.
    package struct Ending: Equatable {
        /// The transaction's queue id.
        package var id: String
        /// Per recipient, envelope order.
        package var outcomes: [Outcome]
        /// One reply for SMTP; one per recipient for LMTP (RFC 2033 §4.2).
        package var replies: [Reply]
        package var recipients: [Recipient]
        package var mailFrom: String
        /// scannerd gave no usable verdict: `ProcessingErrors` decided.
        package var unscanned = false
    }

    /// What the data decoder and header inspector found, for the end-of-data checks.
    package struct DataSummary: Equatable {
        package var sawBareNewline = false
        package var longestLine = 0
        package var size = 0
        package var receivedHeaders = 0
        /// Writing the file failed on the way (``Outcome/queueWriteError`` or ``Outcome/diskFull``).
        package var writeError: Outcome?
    }

    /// What the handler should do with its input.
    package enum Reading: Equatable {
        case command
        case data
        /// At most this many octets of a BDAT chunk.
        case chunk(Int)
        /// Nothing now (waiting on the disk or scannerd, or closing).
        case stop
        /// Something is due before reading on.
        case act(Action)
    }

    package internal(set) var state = State.idle
    package var session: SMTPSession
    package let table: ReplyTable
    package let config: PosternConfig
    /// The message whose file is being written or committed.
    package internal(set) var envelope: Envelope?
    /// The client shut down its sending side.
    package internal(set) var inputClosed = false

    var lastRead: NIODeadline
    /// When the command line being read became due: the whole line must be in within
    /// `CommandTimeout` of it, however its bytes trickle (Postfix's `smtpd_per_record_deadline`).
    var lineStart: NIODeadline
    var dataStart: NIODeadline?
    /// Octets read inside DATA/BDAT this transaction, for the minimum data rate.
    var dataBytes = 0
    var shutdownRequested = false
    /// The handler holds an open queue file for the transaction.
    var messageOpen = false
    var chunkRemaining = 0
    var chunkSize = 0
    var chunkLast = false
    /// Why the current BDAT transaction is refused; answered to each chunk, kept until LAST.
    var chunkFailure: Outcome?
    /// The ending waiting for the commit.
    var pendingEnding: Ending?

    package init(config: PosternConfig, lmtp: Bool, tlsAvailable: Bool, now: NIODeadline) {
        self.config = config
        self.table = ReplyTable(hostname: config.general.hostname, softBounce: config.receiver.softBounce)
        self.session = SMTPSession(lmtp: lmtp, hostname: config.general.hostname, config: config)
        self.session.tlsAvailable = tlsAvailable
        self.lastRead = now
        self.lineStart = now
    }

    /// Back to reading commands: the next line is due from the last read on.
    mutating func awaitCommand() {
        state = .command
        lineStart = lastRead
    }

    /// How a transaction ends: the replies from the table, then the transaction is over.
    mutating func end(_ outcomes: [Outcome], unscanned: Bool = false) -> Ending {
        let ending = ending(outcomes, id: session.queueID, recipients: session.recipients, mailFrom: session.mailFrom ?? "",
                            unscanned: unscanned)
        session.resetTransaction()
        envelope = nil
        return ending
    }

    /// The same outcome for every recipient.
    mutating func endAll(_ outcome: Outcome) -> Ending {
        end(Array(repeating: outcome, count: max(1, session.recipients.count)))
    }

    func ending(_ outcomes: [Outcome], id: String, recipients: [Recipient], mailFrom: String, unscanned: Bool) -> Ending {
        let replies: [Reply]
        if session.lmtp {
            replies = zip(recipients, outcomes).map { rcpt, outcome in
                var r = table.reply(outcome)
                r.lines = ["<\(rcpt.address)> " + r.text]
                return r
            }
        } else {
            replies = Outcome.smtpReply(outcomes).map { [table.reply($0)] } ?? []
        }
        return Ending(id: id, outcomes: outcomes, replies: replies, recipients: recipients, mailFrom: mailFrom, unscanned: unscanned)
    }
}
