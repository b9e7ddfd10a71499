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

/// One SMTP or LMTP session on the wire: frames commands, streams DATA into the spool, and
/// carries out what the ``ReceiveStateMachine`` decides (replies, the queue file, the commit,
/// scannerd's verdict, timeouts). It holds the I/O and the codecs; the decisions are the
/// machine's.
///
/// Pipelining (RFC 2920): replies are collected and flushed whenever the input holds no
/// further complete command, or before the session waits for the disk.
package final class SMTPServerHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// How often the machine's clock ticks: timeouts are whole seconds.
    package static let tickInterval = TimeAmount.seconds(1)

    package let ctx: ReceiverContext
    /// The configuration as it was when the session began (SIGHUP affects new sessions).
    package let config: PosternConfig
    /// STARTTLS's certificate as it was when the session began (a reload affects new sessions).
    package let tls: NIOSSLContext?
    package let lmtp: Bool
    package var machine: ReceiveStateMachine
    package var input = ByteBuffer()
    package var framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
    package var out = ByteBuffer()
    package var logger: Logger
    package var context: ChannelHandlerContext?
    package var timer: RepeatedTask?
    /// Counted in `SessionRegistry.inData` (for the group commit's patience).
    package var countedInData = false
    /// Set when the connection is gone; a commit still in flight then leaves the message
    /// with the client, who never saw a 250 and will send it again.
    package let clientGone = NIOLockedValueBox(false)

    // The message being received.
    package var decoder = DataDecoder()
    package var inspector = HeaderInspector()
    package var writer: SpoolWriter?
    package var writeError: SpoolError?
    package var decoded = ByteBuffer()
    /// The file once its data is complete: owned by the commit (or the scan) in flight, which
    /// a closed connection must not pull away.
    package var committing: SpoolWriter?
    /// Synchronous mode: the file was made durable while scannerd scanned it.
    package var synced = false

    package init(ctx: ReceiverContext, lmtp: Bool) {
        self.ctx = ctx
        self.config = ctx.store.current
        self.tls = ctx.tls.context
        self.lmtp = lmtp
        self.machine = ReceiveStateMachine(config: config, lmtp: lmtp, tlsAvailable: tls != nil, now: .now())
        self.logger = ctx.logger
    }

    /// A Sendable way for the registry to reach the session on its event loop.
    package struct Handle: Sendable {
        package let id: ObjectIdentifier
        /// The client's address, for the counts per address.
        package let client: String
        package let loop: any EventLoop
        package let shutdownAction: @Sendable () -> Void
        package func shutdown() { loop.execute(shutdownAction) }
    }

    package func channelActive(context: ChannelHandlerContext) {
        self.context = context
        // The channel's addresses, cached at accept; the context's would ask the kernel again.
        let remote = context.channel.remoteAddress
        let local = context.channel.localAddress
        let clientIP = remote?.ipAddress ?? "127.0.0.1"   // unix socket clients count as local
        logger[metadataKey: "client"] = "[\(clientIP)]:\(remote?.port ?? 0)"
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let now = NIODeadline.now()
        let admission = ctx.sessions.add(
            Handle(id: ObjectIdentifier(self), client: clientIP, loop: context.eventLoop) { loopBound.value.requestShutdown() },
            now: now, config: config.receiver)
        logStress(admission.stress, sessions: admission.sessions)
        let action = machine.connected(
            clientIP: clientIP, clientPort: remote?.port ?? 0, serverIP: local?.ipAddress ?? "127.0.0.1", serverPort: local?.port ?? 0,
            sessions: admission.sessions, fromClient: admission.client, shuttingDown: ctx.sessions.isShuttingDown, now: now)
        logAdmission(action, admission)
        execute(action, context)
        guard machine.state == .command else { return }
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) { _ in
            let me = loopBound.value
            me.execute(me.machine.tick(now: .now(), stressed: me.ctx.sessions.isStressed), contextBound.value)
        }
        logger.debug("connect")
        flush(context)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        clientGone.withLockedValue { $0 = true }
        machine.closed()
        leaveData()
        timer?.cancel()
        timer = nil
        let left = ctx.sessions.remove(ObjectIdentifier(self), config: config.receiver)
        logStress(left.stress, sessions: left.sessions)
        if let writer {
            logger.info("lost connection after \(machine.session.lastVerb)", metadata: ["queue-id": "\(writer.id)"])
            writer.abort()
            self.writer = nil
        }
        self.context = nil
    }

    /// Reads of this many octets or more are taken as the input as they are (``channelRead(context:data:)``).
    static let adoptedRead = 8192

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        guard machine.read(now: .now()) else { return }
        // A large read with nothing left over from the last (message data, mostly) becomes the
        // input without a copy. A small one is copied: its buffer has the room NIO guessed for
        // the read, and ten thousand idle sessions would each keep one.
        if input.readableBytes == 0 && chunk.readableBytes >= Self.adoptedRead {
            input = chunk
        } else {
            input.writeBuffer(&chunk)
        }
        process(context)
    }

    /// A half-close (`shutdown(SHUT_WR)` by the client) means "no more commands", not
    /// "connection gone": what it sent is still answered (``ReceiveStateMachine/endOfInput()``).
    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .some(.inputClosed) = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if machine.inputEnded() { process(context) }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Graceful shutdown (``SessionRegistry/shutdownAll()``).
    package func requestShutdown() {
        let action = machine.shutdown()
        guard let context else { return }
        execute(action, context)
    }

    // MARK: - input loop

    package func process(_ context: ChannelHandlerContext) {
        loop: while true {
            switch machine.next() {
            case .command:
                guard let framed = framer.next(from: &input) else { break loop }
                let action = machine.commandLine(framed, pipelined: input.readableBytes > 0)
                logRefusedCommand(action, framed)
                execute(action, context)
            case .data:
                let result = input.withUnsafeReadableBytes { decoder.decode($0, into: &decoded) }
                switch result {
                case .needMore:
                    machine.dataRead(input.readableBytes)
                    input.moveReaderIndex(to: input.writerIndex)
                    // A chunk's worth goes to the file at once, and the spool writer then
                    // writes it from here without copying it into its own buffer first.
                    if decoded.readableBytes >= SMTPDefaults.writeChunk { spill() }
                    break loop
                case .end(let consumed):
                    machine.dataRead(consumed)
                    input.moveReaderIndex(forwardBy: consumed)
                    spill()
                    if decoded.capacity > SMTPDefaults.writeChunk {
                        decoded = ByteBuffer()   // a large message's room is not kept between messages
                    }
                    leaveData()
                    execute(machine.endOfData(summary), context)
                }
            case .chunk(let remaining):
                let n = min(remaining, input.readableBytes)
                if n == 0 && remaining > 0 { break loop }
                input.withUnsafeReadableBytes { decoder.copyChunk(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &decoded) }
                input.moveReaderIndex(forwardBy: n)
                spill()
                execute(machine.chunkRead(n, pipelined: input.readableBytes > 0), context)
            case .act(let action):
                execute(action, context)
            case .stop:
                break loop
            }
        }
        if input.readableBytes == 0 && input.capacity > Self.adoptedRead {
            input = ByteBuffer()   // a large read's buffer, all used: an idle session keeps none
        } else {
            input.discardReadBytes()
        }
        if machine.inputClosed { return endOfInput(context) }
        flush(context)
    }

    /// After a half-close, once every complete command is handled.
    package func endOfInput(_ context: ChannelHandlerContext) {
        let lost = writer.map { ["queue-id": "\($0.id)"] as Logger.Metadata }
            ?? (machine.state == .command && (machine.session.inTransaction || input.readableBytes > 0) ? [:] : nil)
        let action = machine.endOfInput()
        if let lost, case .close = action { logger.info("lost connection after \(machine.session.lastVerb)", metadata: lost) }
        execute(action, context)
    }

    /// Carries out one decision of the machine.
    package func execute(_ action: ReceiveStateMachine.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let replies):
            for r in replies { reply(r) }
        case .close(let replies, let why):
            logClose(why)
            for r in replies { reply(r) }
            closeAfterFlush(context)
        case .openMessage:
            openMessage(context)
        case .abortMessage(let replies):
            discardMessage()
            for r in replies { reply(r) }
        case .startTLS(let r):
            startTLS(r, context)
        case .endOfChunks:
            decoder.finishChunks()
            leaveData()
            execute(machine.endOfData(summary), context)
        case .writeEnvelope:
            writeEnvelope(context)
        case .askScanner:
            askScanner(context)
        case .commit(let state, let verdict):
            commit(to: state, verdict: verdict, context)
        case .refuse(let ending):
            refuse(ending)
        case .finish(let ending):
            finish(ending)
        case .flush:
            flush(context)
        }
    }

    /// Why the machine closed the session, for the log (Postfix's words where it has them).
    private func logClose(_ why: Outcome?) {
        let verb = machine.session.lastVerb
        switch why {
        case .notProtected?: logger.notice("reject: client not in ProtectedNetworks")
        case .tooManyConnections?: logger.warning("too many sessions", metadata: ["limit": "\(config.receiver.maxSessions)"])
        case .timeout?:
            // A line begun but not finished is the slow sender the per-line deadline is for.

            let unfinished = input.readableBytes > 0 ? " while receiving a command line (\(input.readableBytes) octets of it)" : ""
            let stress = ctx.sessions.isStressed ? " (stress mode)" : ""
            logger.info("timeout after \(verb)\(unfinished)\(stress)")
        case .improperPipelining?:
            // The octets are the client's message or commands: counted, never logged.
            logger.notice("improper command pipelining after \(verb): \(input.readableBytes) octets sent before the reply")
        default: break
        }
    }

    /// 220, then the handshake. Bytes the client pipelined after STARTTLS are thrown away
    /// unread: they were sent in clear and must not count as commands inside TLS (Postfix
    /// `vstream_fpurge`, CVE-2011-0411).
    package func startTLS(_ ready: Reply, _ context: ChannelHandlerContext) {
        guard let tls else { return }
        reply(ready)
        flush(context)
        input.clear()
        framer = LineFramer(limit: SMTPDefaults.maxBufferedLine)
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
