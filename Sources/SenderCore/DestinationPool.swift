import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PosternPolicy
import PosternSMTP

/// Connections to one next hop, reused across messages. Up to `maxConnections` workers each
/// own one connection and take jobs from a shared queue; a worker idle for `idleTime` says
/// QUIT. When a connection cannot be made, every job waiting for that hop is deferred at once,
/// so a dead next hop costs one connect attempt, not one per message.
package final class DestinationPool: Sendable {
    package let endpoint: Endpoint
    /// Recipients with another TLS policy for the same hop have a pool of their own.
    package let tls: TLSPolicy
    private let group: any EventLoopGroup
    private let settings: SenderSettings
    private let logger: Logger
    /// TLS contexts and credentials as configured now, asked for at every new connection.
    private let policy: @Sendable () -> NextHopPolicy

    private struct State {
        package var pending: [DeliveryJob] = []
        /// Idle workers, longest idle first, with the event loop of each one's connection.
        package var idle: [(id: Int, since: NIODeadline, loop: any EventLoop, waiter: CheckedContinuation<DeliveryJob?, Never>)] = []
        /// A check for workers idle for `idleTime` is scheduled (``reap()``).
        package var reaping = false
        package var workers = 0
        package var nextWaiter = 0
        /// Open connections, so that a stopping senderd can cut stalled ones.
        package var channels: [ObjectIdentifier: any Channel] = [:]
    }
    private let state = NIOLockedValueBox(State())

    package init(endpoint: Endpoint, tls: TLSPolicy, group: any EventLoopGroup, settings: SenderSettings, logger: Logger,
         policy: @escaping @Sendable () -> NextHopPolicy) {
        self.endpoint = endpoint
        self.tls = tls
        self.group = group
        self.settings = settings
        self.policy = policy
        var l = logger
        l[metadataKey: "relay"] = "\(endpoint)"
        self.logger = l
    }

    package func submit(_ job: DeliveryJob) {
        enum Next { case handTo(CheckedContinuation<DeliveryJob?, Never>), spawn, wait }
        let next: Next = state.withLockedValue { s in
            // A worker whose connection is on this thread's loop sends the job without a
            // hand-over to another thread (the task resumes where it is resumed from).
            if let i = s.idle.firstIndex(where: { $0.loop.inEventLoop }) ?? s.idle.indices.first {
                return .handTo(s.idle.remove(at: i).waiter)
            }
            s.pending.append(job)
            if s.workers < settings.maxConnections {
                s.workers += 1
                return .spawn
            }
            return .wait
        }
        switch next {
        case .handTo(let w): w.resume(returning: job)
        case .spawn: Task { await self.work() }
        case .wait: break
        }
    }

    private func nextJob(on loop: any EventLoop) async -> DeliveryJob? {
        let id = state.withLockedValue { s -> Int in s.nextWaiter += 1; return s.nextWaiter }
        return await withCheckedContinuation { (c: CheckedContinuation<DeliveryJob?, Never>) in
            let (job, reapAt): (DeliveryJob?, NIODeadline?) = state.withLockedValue { s in
                if !s.pending.isEmpty { return (s.pending.removeFirst(), nil) }
                let now = NIODeadline.now()   // taken under the lock: `idle` stays in time order
                s.idle.append((id, now, loop, c))
                defer { s.reaping = true }
                return (nil, s.reaping ? nil : now + TimeAmount(settings.idleTime))
            }
            if let job { c.resume(returning: job); return }
            if let reapAt { scheduleReap(at: reapAt) }
        }
    }

    /// One timer per pool, not one per idle spell: a worker goes idle after every message, and
    /// a timer of its own (a sleeping task) cost a thread's wake-up each time.
    private func scheduleReap(at deadline: NIODeadline) {
        group.any().scheduleTask(deadline: deadline) { self.reap() }
    }

    /// Ends the waits of the workers idle for `idleTime` or longer (they say QUIT) and
    /// schedules the next check for the longest idle of the others.
    private func reap() {
        let now = NIODeadline.now()
        let idleTime = TimeAmount(settings.idleTime)
        let (expired, next) = state.withLockedValue { s -> ([CheckedContinuation<DeliveryJob?, Never>], NIODeadline?) in
            let kept = s.idle.firstIndex { $0.since + idleTime > now } ?? s.idle.count
            let expired = s.idle[..<kept].map(\.waiter)
            s.idle.removeFirst(kept)
            guard let first = s.idle.first else {
                s.reaping = false
                return (expired, nil)
            }
            return (expired, first.since + idleTime)
        }
        for w in expired { w.resume(returning: nil) }
        if let next { scheduleReap(at: next) }
    }

    /// Closes every connection, busy or not: their jobs are deferred (the end of a graceful
    /// shutdown that waited long enough for a stalled next hop).
    package func abortAll() {
        for c in state.withLockedValue({ Array($0.channels.values) }) { c.close(promise: nil) }
    }

    /// Lets idle workers say QUIT now (graceful shutdown), instead of after `idleTime`.
    package func closeIdle() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<DeliveryJob?, Never>] in
            defer { s.idle = [] }
            return s.idle.map(\.waiter)
        }
        for w in waiters { w.resume(returning: nil) }
    }

    /// Takes a pending job without waiting (for the first job of a new worker).
    private func takePending() -> DeliveryJob? {
        state.withLockedValue { s in s.pending.isEmpty ? nil : s.pending.removeFirst() }
    }

    private func failAllPending(_ why: String) {
        let jobs = state.withLockedValue { s -> [DeliveryJob] in defer { s.pending = [] }; return s.pending }
        for j in jobs { j.deferAll(why) }
    }

    private func work() async {
        defer {
            let respawn = state.withLockedValue { s -> Bool in
                s.workers -= 1
                if !s.pending.isEmpty && s.idle.isEmpty { s.workers += 1; return true }
                return false
            }
            if respawn { Task { await self.work() } }
        }
        guard let first = takePending() else { return }
        // `may`: a failed TLS handshake is followed by one connection without STARTTLS.
        var inClear = false
        while let retry = await session(first: first, inClear: inClear), !inClear {
            logger.warning("TLS handshake with \(endpoint) failed (\(retry)); trying again without TLS")
            inClear = true
        }
    }

    /// One connection: returns why TLS failed when the jobs should go out again in clear.
    private func session(first: DeliveryJob, inClear: Bool) async -> String? {
        let channel: NIOAsyncChannel<Reply, IOData>
        do {
            channel = try await connect()
        } catch {
            let why = "connect to \(endpoint): \(ErrorText.describe(error))"
            logger.warning("\(why)")
            first.deferAll(why)
            failAllPending(why)
            return nil
        }
        var current: DeliveryJob? = first
        var retryInClear: String?
        let key = ObjectIdentifier(channel.channel)
        state.withLockedValue { $0.channels[key] = channel.channel }
        defer { state.withLockedValue { _ = $0.channels.removeValue(forKey: key) } }
        do {
            try await channel.executeThenClose { inbound, outbound in
                var conn = ClientConnection(replies: inbound.makeAsyncIterator(), outbound: outbound,
                                            eventLoop: channel.channel.eventLoop, lmtp: endpoint.mailProtocol == .lmtp, hostname: settings.hostname, logger: logger)
                switch try await prepare(&conn, channel: channel.channel, inClear: inClear) {
                case .ready:
                    await serve(&conn, &current)
                case .giveUp(let why, let quit):
                    logger.warning("\(why)")
                    current?.deferAll(why)
                    current = nil
                    failAllPending(why)
                    if quit { try? await conn.send("QUIT\r\n") }
                case .retryInClear(let why):
                    retryInClear = why   // `current` goes out on the next connection
                }
            }
        } catch {
            let why = "lost connection with \(endpoint): \(ErrorText.describe(error))"
            logger.warning("\(why)")
            current?.deferAll(why)
            return nil
        }
        return retryInClear
    }

    /// Whether a new connection can take mail: greeted, and set up (STARTTLS, AUTH) as the
    /// policy asks.
    private enum Preparation {
        case ready
        /// Every job for this hop is deferred; `quit` when the session got far enough to say so.
        case giveUp(String, quit: Bool)
        case retryInClear(String)
    }

    private func prepare(_ conn: inout ClientConnection, channel: any Channel, inClear: Bool) async throws -> Preparation {
        if let refusal = try await conn.open() { return .giveUp("\(endpoint) refused to talk to us: \(refusal)", quit: false) }
        switch try await conn.setUp(channel: channel, endpoint: endpoint, policy: policy(), inClear: inClear, logger: logger) {
        case .ready: return .ready
        case .deferAll(let why): return .giveUp(why, quit: true)
        case .retryInClear(let why): return .retryInClear(why)
        }
    }

    /// Delivers `current`, then whatever waits for this hop, until none comes within the idle
    /// time; then QUIT.
    private func serve(_ conn: inout ClientConnection, _ current: inout DeliveryJob?) async {
        var reused = false
        while let job = current {
            current = nil
            let result = await conn.deliver(job)
            if let broken = result.broken {
                // A cached connection the next hop had already closed: the job gets one more
                // try on a fresh connection before it is deferred.
                if reused && !job.retried && !conn.sentData {
                    logger.debug("cached connection was dead (\(ErrorText.describe(broken))); retrying on a new one")
                    submit(job.retry())
                } else {
                    logger.warning("lost connection: \(ErrorText.describe(broken))")
                    job.finish(result.outcomes)
                }
                return
            }
            job.finish(result.outcomes)
            reused = true
            current = await nextJob(on: conn.eventLoop)
        }
        try? await conn.send("QUIT\r\n")
        _ = try? await conn.read()
    }

    private func connect() async throws -> NIOAsyncChannel<Reply, IOData> {
        // NIO's own conversion; the extra nanosecond is as it always was.
        let timeout = TimeAmount(settings.connectTimeout) + .nanoseconds(1)
        let readTimeout = TimeAmount(settings.readTimeout)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<Reply, IOData>> = { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: readTimeout))
                try ch.pipeline.syncOperations.addHandler(CloseOnIdle())
                try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(ReplyDecoder()))
                return try NIOAsyncChannel<Reply, IOData>(wrappingChannelSynchronously: ch)
            }
        }
        switch endpoint.location {
        case .inet(let host, let port):
            return try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
        case .unix(let path):
            return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
        }
    }
}
