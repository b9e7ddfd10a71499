import Logging
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil

/// The DATA and BDAT phases of a session: the queue file is opened, fed as the message
/// streams in, checked at the end (smuggling, line length, size, loops) and committed.
extension SMTPServerHandler {
    /// Creates the queue file with Postern's Received: field; the refusal if it cannot.
    package func openWriter() -> Reply? {
        let id = session.queueID
        do {
            let w = try SpoolWriter(layout: ctx.layout, id: id)
            if config.receiver.addReceivedHeader {
                try w.append(ReceivedHeader.make(envelope: session.envelope(size: 0), hostname: config.general.hostname))
            }
            writer = w
        } catch {
            logger.error("cannot create queue file: \(error)", metadata: ["queue-id": "\(id)"])
            return error.isDiskFull
                ? Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
                : Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error")
        }
        decoder = DataDecoder()
        inspector = HeaderInspector()
        writeError = nil
        decoded.clear()
        enterData()
        return nil
    }

    package func startData(_ context: ChannelHandlerContext) {
        if let refusal = openWriter() {
            reply(refusal)
            return
        }
        mode = .data
        dataStart = .now()
        reply(Reply(354, nil, "End data with <CR><LF>.<CR><LF>"))
        flush(context)
    }

    package func startChunk(size: Int, last: Bool, _ context: ChannelHandlerContext) {
        chunkRemaining = size
        chunkSize = size
        chunkLast = last
        mode = .chunk
        guard session.chunking else { return }   // refused when the chunk is complete
        guard writer == nil, chunkFailure == nil else { return }
        dataStart = .now()
        chunkFailure = openWriter()
    }

    package func endOfChunk(_ context: ChannelHandlerContext) {
        mode = .command
        guard session.chunking else {
            reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: need MAIL and RCPT before BDAT"))
            return
        }
        if let failure = chunkFailure {
            if chunkLast {
                chunkFailure = nil
                writer?.abort()
                writer = nil
                finishTransaction(with: failure)
            } else {
                reply(failure)
            }
            return
        }
        if chunkLast {
            decoder.finishChunks()
            endOfData(context)
        } else {
            reply(Reply(250, EnhancedStatus(2, 0, 0), "Ok: \(chunkSize) octets received"))
        }
    }

    /// Moves decoded bytes to the spool file (page cache; the fsync happens off the loop).
    package func spill() {
        guard decoded.readableBytes > 0 else { return }
        inspector.feed(decoded)
        if let writer, writeError == nil, decoder.size <= config.receiver.maxMessageSize {
            do { try writer.append(&decoded) } catch { writeError = error }
        }
        decoded.clear()
    }

    package func enterData() {
        if !countedInData { countedInData = true; ctx.sessions.dataStarted() }
    }

    package func leaveData() {
        if countedInData { countedInData = false; ctx.sessions.dataEnded() }
    }

    package func endOfData(_ context: ChannelHandlerContext) {
        leaveData()
        guard let writer else { mode = .command; return }
        self.writer = nil
        let id = writer.id
        var log = logger
        log[metadataKey: "queue-id"] = "\(id)"
        let refusal: Reply? = {
            if decoder.sawBareNewline {
                return Reply(550, EnhancedStatus(5, 5, 2), "Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)")
            }
            if decoder.longestLine > SMTPDefaults.maxTextLine {
                return Reply(550, EnhancedStatus(5, 5, 2), "Error: message has a line longer than \(SMTPDefaults.maxTextLine) octets")
            }
            if decoder.size > config.receiver.maxMessageSize {
                return Reply(552, EnhancedStatus(5, 3, 4), "Error: message file too big")
            }
            if inspector.receivedCount >= config.receiver.maxReceivedHeaders {
                return Reply(554, EnhancedStatus(5, 4, 6), "Error: too many hops (mail forwarding loop)")
            }
            if let e = writeError {
                return e.isDiskFull ? Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
                                    : Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error")
            }
            return nil
        }()
        if let refusal {
            (refusal.isTransient ? ctx.metrics.tempfailed : ctx.metrics.refused).increment()
            writer.abort()
            logRefused(log, session.recipients.map { _ in refusal }, size: writer.messageBytes, wholeMessage: true)
            finishTransaction(with: refusal)
            mode = .command
            return
        }
        let guardValues = inspector.guardValues
        let bodyHash = inspector.bodyHash()
        var envelope = session.envelope(size: writer.messageBytes)
        envelope.completed = timespec.now.seconds
        envelope.bodyHash = bodyHash
        envelope.receivedHeaders = inspector.receivedCount
        // Each valid guard is one earlier pass through this filter (or one sharing its key).
        let passes = guardValues.compactMap { ctx.loopGuard.stamp(value: $0, bodyHash: bodyHash) }
        envelope.validGuards = passes.count
        if passes.count >= config.receiver.maxFilterPasses {
            // A loop through the filter itself (a route back into the MTA's filtered port):
            // held for the administrator, neither circulated until the MTA's hop limit nor
            // bounced (the loop often carries bounces and system mail, which have nobody to go to).
            envelope.holdReason = "mail loop: pass \(passes.count + 1) through this filter; earlier passes "
                + passes.map { "\($0.host) \($0.id)" }.joined(separator: ", ")
        }
        do {
            try writer.finish(envelope: envelope)
        } catch {
            writer.abort()
            ctx.metrics.tempfailed.increment()
            log.error("queue file write error: \(error)")
            logRefused(log, session.recipients.map { _ in Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error") },
                       size: writer.messageBytes, wholeMessage: true)
            finishTransaction(with: error.isDiskFull ? Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
                                                      : Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error"))
            mode = .command
            return
        }
        mode = .waiting
        if envelope.holdReason != nil {
            commit(writer, envelope: envelope, log: log, context: context, codes: nil, text: "", dropVerdict: false,
                   synced: false, to: .hold)
        } else if config.synchronous {
            prescan(writer, envelope: envelope, log: log, context: context)
        } else {
            commit(writer, envelope: envelope, log: log, context: context, codes: nil, text: "", dropVerdict: false, synced: false)
        }
    }

    /// Makes the message durable, wakes scannerd and answers: 250 to all, or, after a
    /// before-queue scan, each recipient's code. `dropVerdict`: scannerd did not answer in
    /// time, whatever it may still write is thrown away first. `synced`: the message is
    /// durable already, only the rename is left. `state`: `hold` for a message in a loop.
    package func commit(_ writer: SpoolWriter, envelope queued: Envelope, log commitLog: Logger, context: ChannelHandlerContext,
                codes: [Int]?, text: String, dropVerdict: Bool, synced: Bool, to state: SpoolState = .scan) {
        let id = writer.id
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctxBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let box = UncheckedBox(writer)
        let committer = ctx.committer
        let started = ContinuousClock.now
        let gone = clientGone
        ctx.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> Void in
            if dropVerdict { try box.value.discardVerdict() }
            // A client whose connection broke before its reply still has the message and
            // will send it again (RFC 5321 §4.1.1.4): keeping ours too would deliver it twice.
            if gone.withLockedValue({ $0 }) { throw ClientLeft() }
            // The committer batches commits into scan/; a rare held message commits alone.
            try box.value.commit(to: state, committer: state == .scan ? committer : nil, synced: synced && !dropVerdict)
        }.whenComplete { result in
            let me = loopBound.value
            let context = ctxBound.value
            switch result {
            case .success:
                me.ctx.metrics.commit.record(ContinuousClock.now - started)
                me.ctx.metrics.queued.increment()
                me.ctx.metrics.bytes.increment(by: Int64(queued.size))
                var fields: Logger.Metadata = [
                    "from": "<\(queued.mailFrom)>", "nrcpt": "\(queued.recipients.count)", "size": "\(queued.size)",
                ]
                if let mid = me.inspector.messageID { fields["message-id"] = "\(mid)" }
                commitLog.info("queued", metadata: fields)
                if let codes {   // recipients a before-queue scan refused, while others were accepted
                    let replies = me.replies(codes, id: id, text: text)
                    me.logRefused(commitLog, replies, size: queued.size, wholeMessage: false)
                }
                if let reason = queued.holdReason {
                    commitLog.error("held: \(reason); fix the route, then: posternctl queue release \(id)")
                } else {
                    me.ctx.scanner.send(.scan(id: id))
                }
                me.finishTransaction(replies: me.replies(codes ?? [250], id: id, text: text))
            case .failure(let error) where error is ClientLeft:
                box.value.abort()
                commitLog.info("lost connection before the reply to end of data: message left with the client")
            case .failure(let error):
                box.value.abort()
                me.ctx.metrics.tempfailed.increment()
                let disk = (error as? SpoolError)?.isDiskFull ?? false
                commitLog.error("queue file commit failed: \(error)")
                me.finishTransaction(with: disk ? Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
                                               : Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error"))
            }
            guard me.mode == .waiting else { return }   // connection went away meanwhile
            me.mode = .command
            me.process(context)
        }
    }

    /// Synchronous mode: the before-queue scan decides the reply; the file is committed only
    /// when some recipient is accepted, and thrown away otherwise (the client keeps the mail).
    /// The message is made durable while it is scanned, so the scan costs the MTA no more than
    /// the longer of the two.
    package func prescan(_ writer: SpoolWriter, envelope: Envelope, log: Logger, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctxBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let box = UncheckedBox(writer)
        let committer = ctx.committer
        let synced = ctx.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> Void in
            try box.value.sync(committer: committer)
        }.map { true }.recover { _ in false }   // a failed sync is tried again by the commit
        // The header is not parsed here: header: rules do not choose ScanTimeout before the queue.
        let timeout = RouteResolver(config: config).scanTimeout(for: envelope, recipients: envelope.recipients.indices, headers: nil)
        let verdict = ctx.prescan.verdict(id: writer.id, timeout: timeout, on: context.eventLoop)
        verdict.and(synced).whenComplete { both in
            let me = loopBound.value
            let context = ctxBound.value
            let writer = box.value
            let result = both.map(\.0)
            let isSynced = (try? both.get().1) ?? false
            guard me.mode == .waiting else {   // the client left without a reply: it keeps the mail
                writer.abort()
                return
            }
            let codes: [Int]
            let text: String
            var late = false
            if case .success(let answer?) = result, answer.codes.count == envelope.recipients.count {
                (codes, text) = answer
            } else {
                (codes, text) = me.processingErrorCodes(envelope)
                late = true
                log.warning("no before-queue verdict in time: ProcessingErrors applied", metadata: ["codes": "\(codes)"])
            }
            if codes.contains(250) {
                me.commit(writer, envelope: envelope, log: log, context: context, codes: codes, text: text,
                          dropVerdict: late, synced: isSynced)
                return
            }
            writer.abort()
            (codes.contains(451) ? me.ctx.metrics.tempfailed : me.ctx.metrics.refused).increment()
            me.logRefused(log, me.replies(codes, id: writer.id, text: text), size: envelope.size, wholeMessage: true)
            me.finishTransaction(replies: me.replies(codes, id: writer.id, text: text))
            me.mode = .command
            me.process(context)
        }
    }

    /// The log of a refusal at end of data: for a message refused as a whole one line with
    /// its sender, size and Message-ID, then one `to=` line per refused recipient (Postfix
    /// style, so that every recipient's fate can be followed by its queue id).
    package func logRefused(_ log: Logger, _ replies: [Reply], size: Int, wholeMessage: Bool) {
        if wholeMessage {
            var fields: Logger.Metadata = [
                "from": "<\(session.mailFrom ?? "")>", "nrcpt": "\(session.recipients.count)", "size": "\(size)",
            ]
            if let mid = inspector.messageID { fields["message-id"] = "\(mid)" }
            log.notice("refused", metadata: fields)
        }
        for (rcpt, r) in zip(session.recipients, replies) where !r.isPositive {
            let dsn = r.status.map { "\($0)" } ?? (r.isTransient ? "4.0.0" : "5.0.0")
            log.notice("to=<\(rcpt.address)>, dsn=\(dsn), status=\(r.isTransient ? "deferred" : "refused") (\(r))")
        }
    }

    /// scannerd did not answer: `ProcessingErrors` for each recipient. Over one SMTP reply,
    /// anything but a common answer is a tempfail.
    package func processingErrorCodes(_ e: Envelope) -> ([Int], String) {
        let engine = ScanEngine(config: config)
        var codes = e.recipients.indices.map { i -> Int in
            switch engine.processingErrors(for: e, recipient: i).main {
            case .reject: 550
            case .tempfail: 451
            case .pass, .continue, .discard: 250
            }
        }
        if Set(codes).count > 1 { codes = codes.map { _ in 451 } }
        return (codes, "content scanner not available")
    }

    /// The replies for end-of-data codes: one for SMTP, one per recipient for LMTP.
    package func replies(_ codes: [Int], id: String, text: String) -> [Reply] {
        let reason = text.isEmpty ? "" : ": " + String(text.prefix(400))
        return codes.map { code in
            switch code {
            case 550: Reply(550, EnhancedStatus(5, 7, 1), "Message rejected\(reason)")
            case 451: Reply(451, EnhancedStatus(4, 7, 1), "Try again later\(reason)")
            default: Reply(250, EnhancedStatus(2, 0, 0), "Ok: queued as \(id)")
            }
        }
    }

    /// Per-recipient replies (LMTP), or the one SMTP reply: all recipients share one code
    /// there (scannerd makes it so), the first reply stands for all.
    package func finishTransaction(replies: [Reply]) {
        guard lmtp, replies.count == session.recipients.count else {
            finishTransaction(with: replies.first { $0.code != 250 } ?? replies[0])
            return
        }
        for (rcpt, r) in zip(session.recipients, replies) {
            var each = r
            each.lines = ["<\(rcpt.address)> " + r.text]
            reply(each)
        }
        session.resetTransaction()
    }

    /// The end-of-data reply: one for SMTP, one per accepted recipient for LMTP (RFC 2033 §4.2).
    package func finishTransaction(with r: Reply) {
        if lmtp {
            for rcpt in session.recipients {
                var each = r
                each.lines = ["<\(rcpt.address)> " + r.text]
                reply(each)
            }
        } else {
            reply(r)
        }
        session.resetTransaction()
    }
}

/// The connection ended before the end-of-data reply could be written.
package struct ClientLeft: Error {}
