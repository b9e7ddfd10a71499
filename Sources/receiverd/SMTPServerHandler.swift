import Glibc
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Shared

/// One SMTP or LMTP session: frames commands, runs the command table, streams DATA into the
/// spool and answers end-of-data only once the message is durable.
///
/// Pipelining (RFC 2920): replies are collected and flushed whenever the input holds no
/// further complete command, or before the session waits for the disk.
final class SMTPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode { case command, data, chunk, waiting, closing }

    let ctx: ReceiverContext
    /// The configuration as it was when the session began (SIGHUP affects new sessions).
    let config: PosternConfig
    let lmtp: Bool
    private var input = ByteBuffer()
    private var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
    private var out = ByteBuffer()
    private var mode = Mode.command
    private var session: SMTPSession
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var shutdownRequested = false
    private var lastRead = NIODeadline.now()
    private var dataStart: NIODeadline?
    private var timer: RepeatedTask?

    // DATA phase
    private var decoder = DataDecoder()
    private var inspector = HeaderInspector()
    private var writer: SpoolWriter?
    private var writeError: SpoolError?
    private var decoded = ByteBuffer()
    // BDAT
    private var chunkRemaining = 0
    private var chunkSize = 0
    private var chunkLast = false
    /// Why the current BDAT transaction is refused; answered to each chunk, kept until LAST.
    private var chunkFailure: Reply?

    init(ctx: ReceiverContext, lmtp: Bool) {
        self.ctx = ctx
        self.config = ctx.store.current
        self.lmtp = lmtp
        self.session = SMTPSession(lmtp: lmtp, hostname: config.general.hostname, config: config)
        self.session.tlsAvailable = ctx.tls != nil
        self.logger = ctx.logger
    }

    /// A Sendable way for the registry to reach the session on its event loop.
    struct Handle: Sendable {
        let id: ObjectIdentifier
        let loop: any EventLoop
        let shutdownAction: @Sendable () -> Void
        func shutdown() { loop.execute(shutdownAction) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let remote = context.remoteAddress
        let local = context.localAddress
        session.clientIP = remote?.ipAddress ?? "127.0.0.1"   // unix socket clients count as local
        session.clientPort = remote?.port ?? 0
        session.serverIP = local?.ipAddress ?? "127.0.0.1"
        session.serverPort = local?.port ?? 0
        logger[metadataKey: "client"] = "[\(session.clientIP)]:\(session.clientPort)"
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctxBoundForTimer = NIOLoopBound(context, eventLoop: context.eventLoop)
        ctx.sessions.add(Handle(id: ObjectIdentifier(self), loop: context.eventLoop) { loopBound.value.requestShutdown() })

        if ctx.sessions.isShuttingDown {
            reply(Reply(421, EnhancedStatus(4, 3, 2), "\(config.general.hostname) Service shutting down, closing channel"))
            closeAfterFlush(context)
            return
        }
        guard config.receiver.protectedNetworks.contains(where: { $0.contains(session.clientIP) }) else {
            logger.notice("reject: client not in ProtectedNetworks")
            reply(Reply(554, EnhancedStatus(5, 7, 1), "Access denied: \(session.clientIP) is not in ProtectedNetworks"))
            closeAfterFlush(context)
            return
        }
        if ctx.sessions.count > config.receiver.maxSessions {
            logger.warning("too many sessions", metadata: ["limit": "\(config.receiver.maxSessions)"])
            reply(Reply(421, EnhancedStatus(4, 7, 0), "\(config.general.hostname) Error: too many connections"))
            closeAfterFlush(context)
            return
        }
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            loopBound.value.checkTimeouts(ctxBoundForTimer.value)
        }
        logger.debug("connect")
        reply(Reply(220, nil, "\(config.general.hostname) \(lmtp ? "LMTP" : "ESMTP") Postern"))
        flush(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        ctx.sessions.remove(ObjectIdentifier(self))
        if let writer {
            logger.info("lost connection after \(session.lastVerb)", metadata: ["queue-id": "\(writer.id)"])
            writer.abort()
            self.writer = nil
        }
        mode = .closing
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if mode == .closing { return }
        lastRead = .now()
        input.writeBuffer(&chunk)
        process(context)
    }

    /// Timeouts, checked once a second: `CommandTimeout` of silence between commands,
    /// `DataTimeout` of silence inside DATA/BDAT, and a minimum data rate so that a client
    /// trickling bytes cannot hold a session for ever (Postfix's `smtpd_min_data_rate`).
    private func checkTimeouts(_ context: ChannelHandlerContext) {
        guard mode != .waiting, mode != .closing else { return }
        let now = NIODeadline.now()
        let inData = mode == .data || mode == .chunk
        let silence = inData ? config.receiver.dataTimeout : config.receiver.commandTimeout
        var expired = now - lastRead > .nanoseconds(Int64(silence.components.seconds) * 1_000_000_000)
        if inData, let start = dataStart {
            let allowed = Int64(config.receiver.dataTimeout.components.seconds) + Int64(decoder.size / SMTPDefaults.minDataRate)
            expired = expired || now - start > .seconds(allowed)
        }
        guard expired else { return }
        logger.info("timeout after \(session.lastVerb)")
        if let writer { writer.abort(); self.writer = nil }
        reply(Reply(421, EnhancedStatus(4, 4, 2), "\(config.general.hostname) Error: timeout exceeded"))
        closeAfterFlush(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Graceful shutdown: an idle session is closed with 421 now; one inside a transaction
    /// finishes it first (its message is either durable with a 250 or still the client's).
    func requestShutdown() {
        shutdownRequested = true
        guard let context, mode == .command, !session.inTransaction else { return }
        reply(Reply(421, EnhancedStatus(4, 3, 2), "\(config.general.hostname) Service shutting down, closing channel"))
        closeAfterFlush(context)
    }

    // MARK: - input loop

    private func process(_ context: ChannelHandlerContext) {
        loop: while true {
            switch mode {
            case .command:
                if shutdownRequested && !session.inTransaction {
                    reply(Reply(421, EnhancedStatus(4, 3, 2), "\(config.general.hostname) Service shutting down, closing channel"))
                    closeAfterFlush(context)
                    return
                }
                guard let framed = framer.next(from: &input) else { break loop }
                handle(framed, context)
            case .data:
                let result = input.withUnsafeReadableBytes { decoder.decode($0, into: &decoded) }
                switch result {
                case .needMore:
                    input.moveReaderIndex(to: input.writerIndex)
                    spill()
                    break loop
                case .end(let consumed):
                    input.moveReaderIndex(forwardBy: consumed)
                    spill()
                    endOfData(context)
                }
            case .chunk:
                let n = min(chunkRemaining, input.readableBytes)
                if n > 0 {
                    input.withUnsafeReadableBytes { decoder.copyChunk(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &decoded) }
                    input.moveReaderIndex(forwardBy: n)
                    chunkRemaining -= n
                    spill()
                }
                guard chunkRemaining == 0 else { break loop }
                endOfChunk(context)
            case .waiting, .closing:
                break loop
            }
        }
        input.discardReadBytes()
        flush(context)
    }

    private func handle(_ framed: FramedLine, _ context: ChannelHandlerContext) {
        let line: ByteBuffer
        switch framed {
        case .line(let l): line = l
        case .bareLF:
            return error(Reply(500, EnhancedStatus(5, 5, 2), "Error: bare <LF> received; lines must end with <CR><LF>"), context)
        case .overlong:
            return error(Reply(500, EnhancedStatus(5, 5, 2), "Error: line too long"), context)
        }
        guard line.readableBytes <= SMTPDefaults.maxCommandLine,
              let text = line.getString(at: line.readerIndex, length: line.readableBytes),
              !text.utf8.contains(13), !text.utf8.contains(0)
        else { return error(Reply(500, EnhancedStatus(5, 5, 2), "Error: bad command line"), context) }

        switch session.handle(line: Substring(text)) {
        case .reply(let r):
            // A client over MaxRecipients is not misbehaving (RFC 5321 §4.5.3.1.10).
            if (r.isPermanent || r.isTransient) && r.status != EnhancedStatus(4, 5, 3) { session.errors += 1 }
            reply(r)
            if session.errors >= SMTPSession.hardErrorLimit {
                reply(Reply(421, EnhancedStatus(4, 7, 0), "\(config.general.hostname) Error: too many errors"))
                closeAfterFlush(context)
            }
        case .quit(let r):
            reply(r)
            closeAfterFlush(context)
        case .startData:
            startData(context)
        case .chunk(let size, let last):
            startChunk(size: size, last: last, context)
            return
        case .startTLS:
            startTLS(context)
            return
        }
        // RSET, MAIL, HELO… end a BDAT transaction that did not reach LAST.
        if mode == .command, !session.chunking {
            writer?.abort()
            writer = nil
            chunkFailure = nil
        }
    }

    private func error(_ r: Reply, _ context: ChannelHandlerContext) {
        session.errors += 1
        reply(r)
        if session.errors >= SMTPSession.hardErrorLimit {
            reply(Reply(421, EnhancedStatus(4, 7, 0), "\(config.general.hostname) Error: too many errors"))
            closeAfterFlush(context)
        }
    }

    /// 220, then the handshake. Bytes the client pipelined after STARTTLS are thrown away
    /// unread: they were sent in clear and must not count as commands inside TLS (Postfix
    /// `vstream_fpurge`, CVE-2011-0411).
    private func startTLS(_ context: ChannelHandlerContext) {
        guard let tls = ctx.tls else { return }
        reply(Reply(220, EnhancedStatus(2, 0, 0), "Ready to start TLS"))
        flush(context)
        input.clear()
        framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
        session.startTLS()
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
        } catch {
            logger.error("cannot start TLS: \(error)")
            closeAfterFlush(context)
        }
    }

    // MARK: - DATA

    /// Creates the queue file with Postern's Received: field; the refusal if it cannot.
    private func openWriter() -> Reply? {
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
        return nil
    }

    private func startData(_ context: ChannelHandlerContext) {
        if let refusal = openWriter() {
            reply(refusal)
            return
        }
        mode = .data
        dataStart = .now()
        reply(Reply(354, nil, "End data with <CR><LF>.<CR><LF>"))
        flush(context)
    }

    private func startChunk(size: Int, last: Bool, _ context: ChannelHandlerContext) {
        chunkRemaining = size
        chunkSize = size
        chunkLast = last
        mode = .chunk
        guard session.chunking else { return }   // refused when the chunk is complete
        guard writer == nil, chunkFailure == nil else { return }
        dataStart = .now()
        chunkFailure = openWriter()
    }

    private func endOfChunk(_ context: ChannelHandlerContext) {
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
    private func spill() {
        guard decoded.readableBytes > 0 else { return }
        inspector.feed(decoded)
        if let writer, writeError == nil, decoder.size <= config.receiver.maxMessageSize {
            do { try writer.append(&decoded) } catch { writeError = error }
        }
        decoded.clear()
    }

    private func endOfData(_ context: ChannelHandlerContext) {
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
            log.notice("reject: \(refusal)", metadata: ["from": "<\(session.mailFrom ?? "")>"])
            finishTransaction(with: refusal)
            mode = .command
            return
        }
        let bodyHash = inspector.bodyHash()
        var envelope = session.envelope(size: writer.messageBytes)
        envelope.bodyHash = bodyHash
        envelope.receivedHeaders = inspector.receivedCount
        if let g = inspector.guardValue { envelope.guardValid = ctx.loopGuard.isValid(value: g, bodyHash: bodyHash) }
        do {
            try writer.finish(envelope: envelope)
        } catch {
            writer.abort()
            ctx.metrics.tempfailed.increment()
            log.error("queue file write error: \(error)")
            finishTransaction(with: error.isDiskFull ? Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")
                                                      : Reply(451, EnhancedStatus(4, 3, 0), "Error: queue file write error"))
            mode = .command
            return
        }
        mode = .waiting
        let queued = envelope
        let commitLog = log
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctxBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let box = UncheckedBox(writer)
        let committer = ctx.committer
        let started = ContinuousClock.now
        ctx.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> Void in
            try box.value.commit(to: .scan, committer: committer)
        }.whenComplete { result in
            let me = loopBound.value
            let context = ctxBound.value
            switch result {
            case .success:
                me.ctx.metrics.commit.record(ContinuousClock.now - started)
                me.ctx.metrics.queued.increment()
                me.ctx.metrics.bytes.increment(by: Int64(queued.size))
                commitLog.info("queued", metadata: [
                    "from": "<\(queued.mailFrom)>", "nrcpt": "\(queued.recipients.count)", "size": "\(queued.size)",
                ])
                me.ctx.scanner.send(.scan(id: id))
                me.finishTransaction(with: Reply(250, EnhancedStatus(2, 0, 0), "Ok: queued as \(id)"))
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

    /// The end-of-data reply: one for SMTP, one per accepted recipient for LMTP (RFC 2033 §4.2).
    private func finishTransaction(with r: Reply) {
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

    // MARK: - output

    private func reply(_ r: Reply) {
        r.write(into: &out)
    }

    private func flush(_ context: ChannelHandlerContext) {
        guard out.readableBytes > 0, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out = ByteBuffer()
    }

    private func closeAfterFlush(_ context: ChannelHandlerContext) {
        mode = .closing
        if let writer {   // QUIT or an error limit in the middle of BDAT
            writer.abort()
            self.writer = nil
        }
        let payload = out
        out = ByteBuffer()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(payload)).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// Hands a non-Sendable object to the thread pool and back. The session does not touch the
/// writer while the commit runs (it is in `.waiting`), so there is never shared access.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
