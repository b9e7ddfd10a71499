import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

/// Blocked mail kept for the admin: one file per message in `[Quarantine] Path`, in the spool
/// format (docs/spool-format.md) so `posternctl quarantine show` and ordinary tools read it.
/// Its verdict holds the findings, the reasons, and a `P` route for each recipient that
/// `release` delivers to (the blocked ones).
///
/// Written like a queue file (temporary name, fsync, rename, fsync of the directory) but as a
/// copy, so the quarantine may live on another file system than the spool.
public struct Quarantine: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(_ id: String) -> String { directory + "/" + id }

    /// Entry ids, oldest first.
    public func ids() -> [String] {
        ((try? SysCall.listDirectory(directory)) ?? []).filter(QueueID.isValid).sorted()
    }

    /// Stores `message` under its queue id, or under a new id when that is taken (a second
    /// stage, or a retry, quarantining the same message keeps both copies). Blocking. The
    /// message is copied from its spool file by the kernel, not read into memory.
    @discardableResult
    public func store(envelope: Envelope, message: StoredMessage, verdict: Verdict) throws(SpoolError) -> String {
        try SysCall.mkdirs(directory, mode: 0o750)
        let name = access(path(envelope.id), F_OK) == 0 ? QueueID.make() : envelope.id
        let temporary = directory + "/.new-" + name
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        if fd < 0 { throw SpoolError("open", temporary) }
        let header = Array(SpoolFile.header(envelopeAt: SpoolFile.headerLength + message.count).utf8)
        let tail = Array((envelope.write() + verdict.write()).utf8)
        var failure: SpoolError?
        do throws(SpoolError) {
            try SysCall.writeAll(fd, header, path: temporary)
            try message.copy(to: fd, name: temporary)
            try SysCall.writeAll(fd, tail, path: temporary)
        } catch {
            failure = error
        }
        if failure == nil && fsync(fd) != 0 { failure = SpoolError("fsync", temporary) }
        if close(fd) != 0 && failure == nil { failure = SpoolError("close", temporary) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        if rename(temporary, path(name)) != 0 {
            let e = SpoolError("rename", temporary)
            unlink(temporary)
            throw e
        }
        try SysCall.fsyncDirectory(directory)
        return name
    }

    /// ``store(envelope:message:verdict:)`` of a message in memory.
    @discardableResult
    public func store(envelope: Envelope, message: [UInt8], verdict: Verdict) throws(SpoolError) -> String {
        try store(envelope: envelope, message: StoredMessage(message), verdict: verdict)
    }

    /// Envelope, verdict and message of an entry.
    public func read(_ id: String) throws -> (SpoolFile, ByteBuffer) {
        try SpoolFile.readWithMessage(path: path(id))
    }

    public func delete(_ id: String) throws(SpoolError) {
        if unlink(path(id)) != 0 { throw SpoolError("unlink", path(id)) }
    }

    /// Removes entries older than `storedTime`, then the oldest until the total is within
    /// `maxSize`. Returns the ids removed.
    public func prune(storedTime: Duration, maxSize: Int, now: Double = WallClock.seconds) -> [String] {
        var entries: [(id: String, mtime: Double, size: Int)] = []
        for id in ids() {
            var st = stat()
            guard stat(path(id), &st) == 0 else { continue }
            entries.append((id, Double(st.st_mtim.tv_sec), Int(st.st_size)))
        }
        entries.sort { $0.mtime < $1.mtime }
        let oldest = now - Double(storedTime.components.seconds)
        var total = entries.reduce(0) { $0 + $1.size }
        var removed: [String] = []
        for e in entries where e.mtime < oldest || total > maxSize {
            if unlink(path(e.id)) == 0 {
                removed.append(e.id)
                total -= e.size
            }
        }
        return removed
    }

    /// A released recipient's route as the rules give it now: next hop and, when a rule sets
    /// one, the TLS policy towards it.
    public typealias Route = (endpoint: String, tls: TLSPolicy?)

    /// What a release put back in the queue.
    public struct Released: Sendable, Equatable {
        /// The copy's new queue id.
        public var id: String
        /// Whom it goes to.
        public var recipients: [String]
    }

    /// Puts a copy of entry `id` into `outgoing/` of `layout` under a new queue id, for the
    /// recipients its verdict routes (the blocked ones), or for `only` of all its recipients,
    /// or, with `to`, for that one address instead of the original recipients; the entry
    /// stays, its released recipients' routes marked delivered. The new message is not scanned again. Blocking. `route` gives each released
    /// recipient's route (the policy layer's resolver).
    public func release(_ id: String, only: [String]?, to: String? = nil, layout: SpoolLayout,
                        route: (_ envelope: Envelope, _ recipient: Int, _ headers: [HeaderField]) -> Route) throws -> Released {
        let (entry, message) = try read(id)
        var envelope = entry.envelope
        var wanted = Set((entry.verdict?.routes ?? []).map(\.recipient))
        if let to {
            // The original recipients' DSN requests (NOTIFY, ORCPT) were theirs, not this address's.
            envelope.recipients = [Recipient(address: to)]
            wanted = [0]
        } else if let only {
            let lowered = Set(only.map(ASCII.lowercased))
            wanted = Set(entry.envelope.recipients.indices.filter { lowered.contains(ASCII.lowercased(entry.envelope.recipients[$0].address)) })
            guard !wanted.isEmpty else { throw QuarantineError(hint: "no recipient of \(id) matches") }
        }
        // A copy kept of a message that was delivered (`pass, quarantine`) names no one.
        guard !wanted.isEmpty else { throw QuarantineError(hint: "no recipient of \(id) was blocked; name the ones to release with --rcpt") }
        let newID = QueueID.make()
        envelope.id = newID
        let headers = HeaderField.parseSection(message)
        var verdict = Verdict(scanned: WallClock.seconds, action: .released(from: id))
        for i in wanted.sorted() {
            let r = route(envelope, i, headers)
            verdict.routes.append(.init(recipient: i, endpoint: r.endpoint))
            verdict.recipientTLS[i] = r.tls
        }
        let writer = try SpoolWriter(layout: layout, id: newID)
        do {
            var body = message
            try writer.append(&body)
            try writer.finish(envelope: envelope)
            try writer.appendVerdict(verdict)
            layout.giveToDaemons(layout.path(newID, .incoming))
            try writer.commit(to: .outgoing)
        } catch {
            writer.abort()
            throw error
        }
        // The entry remembers who has had it: their routes become "D" (released), so that a
        // reply with the same release token releases nothing more, and the digest no longer
        // lists it for them. A copy to another address (`to`) releases no recipient's.
        if to == nil {
            let routes = entry.verdict?.routes ?? []
            let released = routes.indices.filter { wanted.contains(routes[$0].recipient) }
            try entry.update(statuses: released.map { ($0, .delivered) }, attempts: nil, sync: true)
        }
        return Released(id: newID, recipients: wanted.sorted().map { envelope.recipients[$0].address })
    }
}

/// A quarantine request that cannot be done as asked.
public struct QuarantineError: Error, Sendable, CustomStringConvertible {
    public var hint: String
    public var description: String { hint }
}
