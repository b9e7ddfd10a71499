import Glibc
import Logging
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// The queue file of a session: opened at DATA (or the first BDAT chunk), fed as the message
/// streams in, given its envelope, scanned (synchronous mode) and committed by the spool's
/// commit thread (``GroupCommitter``).
extension SMTPServerHandler {
    /// Creates the queue file with Postern's Received: field.
    package func openMessage(_ context: ChannelHandlerContext) {
        let id = machine.session.queueID
        do {
            let w = try SpoolWriter(layout: ctx.layout, id: id)
            if config.receiver.addReceivedHeader {
                try w.append(ReceivedHeader.make(envelope: machine.session.envelope(size: 0), hostname: config.general.hostname))
            }
            writer = w
        } catch {
            logger.error("cannot create queue file: \(error)", metadata: ["queue-id": "\(id)"])
            execute(machine.openFailed(Outcome(writeError: error)), context)
            return
        }
        decoder = DataDecoder()
        inspector = HeaderInspector()
        writeError = nil
        decoded.clear()
        enterData()
        execute(machine.messageOpened(), context)
        if machine.state == .data { flush(context) }   // the 354
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

    /// What the end-of-data checks look at.
    package var summary: ReceiveStateMachine.DataSummary {
        .init(sawBareNewline: decoder.sawBareNewline, longestLine: decoder.longestLine, size: decoder.size,
              receivedHeaders: inspector.receivedCount, writeError: writeError.map(Outcome.init(writeError:)))
    }

    /// A message starts: counted for the stress gauge, read in large pieces.
    package func enterData() {
        guard !countedInData else { return }
        countedInData = true
        ctx.sessions.dataStarted()
        try? context?.channel.syncOptions?.setOption(.recvAllocator, value: ReceiverService.dataRecvAllocator)
    }

    /// The message ended (or the session): commands are read in small pieces again.
    package func leaveData() {
        guard countedInData else { return }
        countedInData = false
        ctx.sessions.dataEnded()
        try? context?.channel.syncOptions?.setOption(.recvAllocator, value: ReceiverService.recvAllocator)
    }

    /// Throws the message's file away, whether still being received or complete.
    package func discardMessage() {
        leaveData()
        writer?.abort()
        writer = nil
        committing?.abort()
        committing = nil
    }

    /// Writes the envelope (with the loop guards' verdict) after the message data.
    package func writeEnvelope(_ context: ChannelHandlerContext) {
        guard let writer else { return }
        self.writer = nil
        committing = writer
        let guardValues = inspector.guardValues
        let bodyHash = inspector.bodyHash()
        var envelope = machine.session.envelope(size: writer.messageBytes)
        envelope.completed = WallClock.seconds
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
            logger.error("queue file write error: \(error)", metadata: ["queue-id": "\(writer.id)"])
            execute(machine.writeFailed(Outcome(writeError: error)), context)
            return
        }
        execute(machine.envelopeWritten(envelope), context)
    }

    /// Synchronous mode: the message is made durable while scannerd scans it, so the scan
    /// costs the MTA no more than the longer of the two.
    package func askScanner(_ context: ChannelHandlerContext) {
        guard let writer = committing, let envelope = machine.envelope else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let synced = writer.sync(committer: ctx.committer, on: context.eventLoop)
            .map { true }.recover { _ in false }   // a failed sync is tried again by the commit
        // The header is not parsed here: header: rules do not choose ScanTimeout before the queue.
        let timeout = RouteResolver(config: config).scanTimeout(for: envelope, recipients: envelope.recipients.indices, headers: nil)
        let verdict = ctx.prescan.verdict(id: writer.id, timeout: timeout, on: context.eventLoop)
        verdict.and(synced).whenComplete { both in
            let me = loopBound.value
            me.synced = (try? both.get().1) ?? false
            me.execute(me.machine.verdict((try? both.get().0) ?? nil), contextBound.value)
            me.resume(contextBound.value)
        }
    }

    /// Makes the message durable in `state` (its verdict appended first), wakes the daemon
    /// that takes it from there, and answers.
    package func commit(to state: SpoolState, verdict: Verdict?, _ context: ChannelHandlerContext) {
        guard let writer = committing, let queued = machine.envelope else { return }
        var logger = self.logger
        logger[metadataKey: "queue-id"] = "\(writer.id)"
        let log = logger
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let box = UncheckedBox(writer)
        // After the sync only the verdict is new, and it need not be durable (docs/spool-format.md).
        let synced = self.synced
        self.synced = false
        let started = ContinuousClock.now
        let gone = clientGone
        writer.commit(to: state, verdict: verdict, committer: ctx.committer, synced: synced, prepare: {
            // A client whose connection broke before its reply still has the message and
            // will send it again (RFC 5321 §4.1.1.4): keeping ours too would deliver it twice.
            if gone.withLockedValue({ $0 }) { throw ClientLeft() }
        }, on: context.eventLoop).whenComplete { result in
            let me = loopBound.value
            let context = contextBound.value
            switch result {
            case .success:
                me.committing = nil
                me.ctx.metrics.commit.record(ContinuousClock.now - started)
                me.ctx.metrics.queued.increment()
                me.ctx.metrics.bytes.increment(by: Int64(queued.size))
                var fields: Logger.Metadata = [
                    "from": "<\(queued.mailFrom)>", "nrcpt": "\(queued.recipients.count)", "size": "\(queued.size)",
                ]
                if let mid = me.inspector.messageID { fields["message-id"] = "\(mid)" }
                log.info("queued", metadata: fields)
                switch state {
                case .hold:
                    log.error("held: \(queued.holdReason ?? ""); fix the route, then: posternctl queue release \(queued.id)")
                case .outgoing:
                    me.ctx.sender.send(.deliver(id: queued.id))
                default:
                    me.ctx.scanner.send(.scan(id: queued.id))
                }
                me.execute(me.machine.committed(), context)
            case .failure(let error) where error is ClientLeft:
                me.committing = nil
                box.value.abort()
                log.info("lost connection before the reply to end of data: message left with the client")
            case .failure(let error):
                box.value.abort()
                log.error("queue file commit failed: \(error)")
                me.execute(me.machine.commitFailed(Outcome(writeError: error as? SpoolError)), context)
            }
            me.resume(context)
        }
    }

    /// After the disk or scannerd: read on when the session takes commands again.
    package func resume(_ context: ChannelHandlerContext) {
        guard machine.state == .command else { return }
        process(context)
    }

    /// A transaction that ends without a message: the file goes, the refusal is logged.
    package func refuse(_ ending: ReceiveStateMachine.Ending) {
        let size = (writer ?? committing)?.messageBytes ?? 0
        discardMessage()
        (ending.outcomes.contains { machine.table.reply($0).isTransient } ? ctx.metrics.tempfailed : ctx.metrics.refused).increment()
        var log = logger
        log[metadataKey: "queue-id"] = "\(ending.id)"
        if ending.unscanned {
            log.warning("no before-queue verdict in time: ProcessingErrors applied",
                        metadata: ["outcomes": "\(ending.outcomes.map(\.keyword).joined(separator: ","))"])
        }
        logRefused(log, ending, size: size)
        for r in ending.replies { reply(r) }
    }

    /// A transaction whose message is committed: recipients a before-queue scan refused while
    /// others were accepted are logged.
    package func finish(_ ending: ReceiveStateMachine.Ending) {
        if ending.outcomes.contains(where: { !$0.isQueued }) {
            var log = logger
            log[metadataKey: "queue-id"] = "\(ending.id)"
            logRefused(log, ending)
        }
        for r in ending.replies { reply(r) }
    }
}

/// The connection ended before the end-of-data reply could be written.
package struct ClientLeft: Error {}

extension Outcome {
    /// A spool write that failed: a full disk says so (452), anything else is 451.
    package init(writeError: SpoolError?) {
        self = writeError?.isDiskFull == true ? .diskFull : .queueWriteError
    }
}
