import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool

/// DATA and BDAT, the end-of-data checks, the verdict and the commit.
extension ReceiveStateMachine {
    /// The queue file is open: 354 for DATA; for BDAT the chunk is read on.
    package mutating func messageOpened() -> Action {
        messageOpen = true
        dataStart = lastRead
        dataBytes = 0
        if state == .chunk { return .none }
        state = .data
        return .reply([SMTPSession.startMailInput])
    }

    /// The queue file could not be created: DATA is refused now; a BDAT transaction reads its
    /// chunks and is refused with each of them.
    package mutating func openFailed(_ outcome: Outcome) -> Action {
        if state == .chunk {
            chunkFailure = outcome
            return .none
        }
        return .reply([table.reply(outcome)])
    }

    /// Octets of the message read inside DATA.
    package mutating func dataRead(_ octets: Int) {
        dataBytes += octets
    }

    /// Octets of the current BDAT chunk read; `pipelined`: the client sent more behind them.
    package mutating func chunkRead(_ octets: Int, pipelined: Bool = false) -> Action {
        chunkRemaining -= octets
        dataBytes += octets
        guard chunkRemaining == 0 else { return .none }
        awaitCommand()
        guard session.chunking else {
            // Refused for want of MAIL or RCPT: the client had to read that before going on.
            if pipelined { return improperPipelining([SMTPSession.chunkWithoutTransaction]) }
            return .reply([SMTPSession.chunkWithoutTransaction])
        }
        if let failure = chunkFailure {
            guard chunkLast else { return .reply([table.reply(failure)]) }
            chunkFailure = nil
            return .refuse(endAll(failure))
        }
        return chunkLast ? .endOfChunks : .reply([SMTPSession.chunkReceived(chunkSize)])
    }

    /// End of data (or the last BDAT chunk): refused for what the data showed, or on to the
    /// envelope.
    package mutating func endOfData(_ s: DataSummary) -> Action {
        guard messageOpen else {
            awaitCommand()
            return .none
        }
        messageOpen = false
        let refusal: Outcome? =
            if s.sawBareNewline { .bareNewline }
            else if s.longestLine > SMTPDefaults.maxTextLine { .lineTooLong }
            else if s.size > config.receiver.maxMessageSize { .tooBig }
            else if s.receivedHeaders >= config.receiver.maxReceivedHeaders { .mailLoop }
            else { s.writeError }
        if let refusal {
            awaitCommand()
            return .refuse(endAll(refusal))
        }
        state = .waiting
        return .writeEnvelope
    }

    /// The envelope is written; the file is complete. A message in a loop goes to `hold/`;
    /// in synchronous mode scannerd decides first; otherwise it is queued for scanning.
    package mutating func envelopeWritten(_ e: Envelope) -> Action {
        if e.holdReason == nil && config.synchronous {
            envelope = e
            return .askScanner
        }
        pendingEnding = endAll(.queued(id: e.id))
        envelope = e   // until the commit ends
        return .commit(e.holdReason == nil ? .scan : .hold, verdict: nil)
    }

    /// Writing the envelope failed.
    package mutating func writeFailed(_ outcome: Outcome) -> Action {
        awaitCommand()
        return .refuse(endAll(outcome))
    }

    /// scannerd's answer, nil when none came in `ScanTimeout` (or the connection broke). A
    /// verdict with an outcome per recipient decides; without one `ProcessingErrors` does
    /// (never a silent pass). The file is committed when the reply accepts it (over LMTP:
    /// when anyone is accepted): straight to `outgoing/` when the verdict leaves scannerd
    /// nothing to do, else to `scan/`.
    package mutating func verdict(_ answer: ScannerAnswer?) -> Action {
        guard state == .waiting, let e = envelope else { return .abortMessage([]) }   // the client left: it keeps the mail
        var verdict: Verdict?
        var unscanned = false
        var outcomes: [Outcome]
        if case .verdict(let given, let v)? = answer, given.count == e.recipients.count {
            outcomes = given
            verdict = v
        } else {
            unscanned = true
            outcomes = RouteResolver(config: config).unscannedFates(for: e)
                .map { $0.outcome(id: e.id, reason: "content scanner not available") }
        }
        let ending = end(outcomes, unscanned: unscanned)
        let accepted = session.lmtp ? outcomes.contains(where: \.isQueued) : Outcome.smtpReply(outcomes)?.isQueued == true
        guard accepted else {
            awaitCommand()
            return .refuse(ending)
        }
        envelope = e   // until the commit ends
        pendingEnding = ending
        return .commit(verdict?.readyForDelivery == true ? .outgoing : .scan, verdict: verdict)
    }

    /// The file is durable in its state: the replies. Also after the client left (nobody
    /// reads them then), so that the handler logs and wakes the next daemon.
    package mutating func committed() -> Action {
        guard let ending = pendingEnding else { return .none }
        pendingEnding = nil
        envelope = nil
        if state == .waiting { awaitCommand() }
        return .finish(ending)
    }

    /// The commit failed: the message stays the client's (4xx).
    package mutating func commitFailed(_ outcome: Outcome) -> Action {
        guard let committing = pendingEnding else { return .none }
        pendingEnding = nil
        envelope = nil
        if state == .waiting { awaitCommand() }
        let outcomes = Array(repeating: outcome, count: max(1, committing.recipients.count))
        return .refuse(ending(outcomes, id: committing.id, recipients: committing.recipients, mailFrom: committing.mailFrom,
                              unscanned: false))
    }
}
