import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// One SMTP or LMTP session: frames commands, runs the command table, streams DATA into the
/// spool and answers end-of-data only once the message is durable.
///
/// Pipelining (RFC 2920): replies are collected and flushed whenever the input holds no
/// further complete command, or before the session waits for the disk.
package final class SMTPServerHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    package enum Mode { case command, data, chunk, waiting, closing }

    package let ctx: ReceiverContext
    /// The configuration as it was when the session began (SIGHUP affects new sessions).
    package let config: PosternConfig
    package let lmtp: Bool
    package var input = ByteBuffer()
    package var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
    package var out = ByteBuffer()
    package var mode = Mode.command
    package var session: SMTPSession
    package var logger: Logger
    package var context: ChannelHandlerContext?
    package var shutdownRequested = false
    package var lastRead = NIODeadline.now()
    package var dataStart: NIODeadline?
    package var timer: RepeatedTask?
    /// Counted in `SessionRegistry.inData` (for the group commit's patience).
    package var countedInData = false
    /// The client shut down its sending side: what it sent is still answered, then we close.
    package var inputClosed = false
    /// Set when the connection is gone; a commit still in flight then leaves the message
    /// with the client, who never saw a 250 and will send it again.
    package let clientGone = NIOLockedValueBox(false)

    // DATA phase
    package var decoder = DataDecoder()
    package var inspector = HeaderInspector()
    package var writer: SpoolWriter?
    package var writeError: SpoolError?
    package var decoded = ByteBuffer()
    // BDAT
    package var chunkRemaining = 0
    package var chunkSize = 0
    package var chunkLast = false
    /// Why the current BDAT transaction is refused; answered to each chunk, kept until LAST.
    package var chunkFailure: Reply?

    package init(ctx: ReceiverContext, lmtp: Bool) {
        self.ctx = ctx
        self.config = ctx.store.current
        self.lmtp = lmtp
        self.session = SMTPSession(lmtp: lmtp, hostname: config.general.hostname, config: config)
        self.session.tlsAvailable = ctx.tls != nil
        self.logger = ctx.logger
    }

    /// A Sendable way for the registry to reach the session on its event loop.
    package struct Handle: Sendable {
        package let id: ObjectIdentifier
        package let loop: any EventLoop
        package let shutdownAction: @Sendable () -> Void
        package func shutdown() { loop.execute(shutdownAction) }
    }

    package func channelActive(context: ChannelHandlerContext) {
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
        let client = IPAddress(session.clientIP)   // parsed once, not once per network
        guard let client, config.receiver.protectedNetworks.contains(where: { $0.contains(client) }) else {
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

    package func channelInactive(context: ChannelHandlerContext) {
        clientGone.withLockedValue { $0 = true }
        leaveData()
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

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if mode == .closing { return }
        lastRead = .now()
        input.writeBuffer(&chunk)
        process(context)
    }

    /// Timeouts, checked once a second: `CommandTimeout` of silence between commands,
    /// `DataTimeout` of silence inside DATA/BDAT, and a minimum data rate so that a client
    /// trickling bytes cannot hold a session for ever (Postfix's `smtpd_min_data_rate`).
    package func checkTimeouts(_ context: ChannelHandlerContext) {
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

    /// A half-close (`shutdown(SHUT_WR)` by the client) means "no more commands", not
    /// "connection gone": every command already received is carried out and answered, the
    /// message in flight included, and only then is the connection closed (RFC 5321
    /// §4.1.1.10, RFC 2920 §3.1).
    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .some(.inputClosed) = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputClosed = true
        if mode != .closing { process(context) }
    }

    /// Called once all input is handled after a half-close.
    package func endOfInput(_ context: ChannelHandlerContext) {
        switch mode {
        case .waiting, .closing:
            flush(context)   // the commit's completion comes back to `process`
        case .command:
            if session.inTransaction || input.readableBytes > 0 {
                logger.info("lost connection after \(session.lastVerb)")
            }
            closeAfterFlush(context)
        case .data, .chunk:
            if let writer { logger.info("lost connection after \(session.lastVerb)", metadata: ["queue-id": "\(writer.id)"]) }
            closeAfterFlush(context)
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Graceful shutdown: an idle session is closed with 421 now; one inside a transaction
    /// finishes it first (its message is either durable with a 250 or still the client's).
    package func requestShutdown() {
        shutdownRequested = true
        guard let context, mode == .command, !session.inTransaction else { return }
        reply(Reply(421, EnhancedStatus(4, 3, 2), "\(config.general.hostname) Service shutting down, closing channel"))
        closeAfterFlush(context)
    }

    // MARK: - input loop

    package func process(_ context: ChannelHandlerContext) {
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
        if inputClosed { return endOfInput(context) }
        flush(context)
    }

    package func handle(_ framed: FramedLine, _ context: ChannelHandlerContext) {
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

        let outcome = session.handle(line: Substring(text))
        if case .reply(let r) = outcome, !r.isPositive, ["MAIL", "RCPT"].contains(session.lastVerb) {
            logRefusedCommand(r, line: text)
        }
        switch outcome {
        case .reply(let r):
            // A client over MaxRecipients is not misbehaving (RFC 5321 §4.5.3.1.10).
            if (r.isPermanent || r.isTransient) && r.status != EnhancedStatus(4, 5, 3) {
                error(r, context)
            } else {
                reply(r)
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
            leaveData()
            writer?.abort()
            writer = nil
            chunkFailure = nil
        }
    }

    /// `NOQUEUE: reject: RCPT from [client]: 550 …; from=<…> to=<…>`, as Postfix's smtpd logs
    /// a refused MAIL or RCPT: the refused recipient never gets a queue id, but it gets a line.
    package func logRefusedCommand(_ r: Reply, line: String) {
        let argument = line.firstIndex(of: "<").map { open in
            String(line[open...].prefix { $0 != ">" }.dropFirst().prefix(SMTPDefaults.maxCommandLine))
        } ?? ""
        var fields: Logger.Metadata = ["from": "<\(session.mailFrom ?? (session.lastVerb == "MAIL" ? argument : ""))>"]
        if session.lastVerb == "RCPT" { fields["to"] = "<\(argument)>" }
        logger.notice("NOQUEUE: reject: \(session.lastVerb): \(r)", metadata: fields)
    }

    /// An error reply; Postfix's smtpd_hard_error_limit cuts off a client that keeps erring.
    package func error(_ r: Reply, _ context: ChannelHandlerContext) {
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
    package func startTLS(_ context: ChannelHandlerContext) {
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

    // MARK: - output

    package func reply(_ r: Reply) {
        r.write(into: &out)
    }

    package func flush(_ context: ChannelHandlerContext) {
        guard out.readableBytes > 0, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out = ByteBuffer()
    }

    package func closeAfterFlush(_ context: ChannelHandlerContext) {
        mode = .closing
        leaveData()
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
package struct UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
