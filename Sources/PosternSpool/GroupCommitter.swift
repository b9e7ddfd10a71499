import CPosternShims
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import PosternUtil

/// Group commit for new queue files (DESIGN.md §2: "batch fsyncs across concurrent sessions
/// where it keeps the guarantee"). Each caller has written and not yet synced a file in
/// `incoming/` and hands it to the committer's own thread, which takes every request waiting
/// and, for the batch,
///
/// 1. runs each request's `prepare` (receiverd appends a verdict there);
/// 2. makes their data durable: `fsync` of the file when it is alone, one `syncfs(2)` of the
///    spool's file system when there are several (one flush instead of one per message);
/// 3. renames each into its target state (`scan/`, or `outgoing/` for a message whose
///    before-queue verdict left scannerd nothing to do, `hold/` for a loop);
/// 4. `fsync`s each target directory once for all the renames into it.
///
/// A request completes only after all four steps covered its own file, so a 250 still means
/// the message is on disk. Requests arriving while a batch runs form the next one. A request
/// may ask for step 2 alone (`to: nil`: synchronous mode syncs the message while scannerd scans
/// it), or for steps 3–4 alone (`synced: true`, once that sync is done).
///
/// One thread does every batch, so an event loop hands a commit over and gets the result back
/// without a thread of its own blocking on it: one wake-up of the committer per batch, one
/// task per event loop per batch for the results.
/// XXX: `syncfs` also flushes other dirty data on that file system; a spool on its own file
/// system keeps that cost to Postern's own files.
public final class GroupCommitter: Sendable {
    /// One caller's file, and how to tell the caller how its commit ended.
    package final class Request: @unchecked Sendable {   // only the committer's thread touches it after `submit`
        package let fd: Int32
        package let from: String
        package let to: String?
        /// The directory `to` is in, fsynced after the rename.
        package let directory: String?
        package let synced: Bool
        let prepare: (() throws -> Void)?
        let promise: EventLoopPromise<Void>?
        let done: (@Sendable (Result<Void, any Error>) -> Void)?
        var failure: (any Error)?

        init(fd: Int32, from: String, to: String?, synced: Bool, prepare: (() throws -> Void)?,
             promise: EventLoopPromise<Void>?, done: (@Sendable (Result<Void, any Error>) -> Void)?) {
            self.fd = fd
            self.from = from
            self.to = to
            self.directory = to.map(GroupCommitter.directory(of:))
            self.synced = synced
            self.prepare = prepare
            self.promise = promise
            self.done = done
        }
    }

    /// The thread's side: it holds the core, not the committer, so the committer's end stops it.
    private let core: Core

    public init(layout: SpoolLayout, companionsExpected: (@Sendable () -> Bool)? = nil) throws(SpoolError) {
        let fd = open(layout.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", layout.root) }
        core = Core(rootFD: fd, companionsExpected: companionsExpected)
    }

    /// Requests submitted before are still done; then the thread ends.
    deinit {
        core.stop()
    }

    /// How long a lone request waits for companions when more are about to come.
    package static let gatherWindow: UInt32 = 800   // microseconds

    package static func directory(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    }

    /// Makes `fd`'s file durable (unless `synced`) and renames `from` to `to` (within the spool;
    /// nil: no rename), after `prepare` (run on the committer's thread; a throw fails this
    /// request alone). The future completes on `eventLoop` once that is done.
    public func commit(fd: Int32, from: String, to: String?, synced: Bool = false, prepare: (() throws -> Void)? = nil,
                       on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        core.submit(Request(fd: fd, from: from, to: to, synced: synced, prepare: prepare, promise: promise, done: nil))
        return promise.futureResult
    }

    /// The same, blocking the calling thread until it is done.
    public func commit(fd: Int32, from: String, to: String?, synced: Bool = false) throws(SpoolError) {
        let finished = ConditionLock(value: 0)
        let result = NIOLockedValueBox<Result<Void, any Error>?>(nil)
        core.submit(Request(fd: fd, from: from, to: to, synced: synced, prepare: nil, promise: nil, done: { r in
            result.withLockedValue { $0 = r }
            finished.lock()
            finished.unlock(withValue: 1)
        }))
        finished.lock(whenValue: 1)
        finished.unlock()
        if case .failure(let e) = result.withLockedValue({ $0! }) {
            throw e as? SpoolError ?? SpoolError("commit", from, errno: EIO)
        }
    }

    private final class Core: Sendable {
        private struct State {
            var pending: [Request] = []
            var stopping = false
            var started = false
        }

        let rootFD: Int32
        /// Tells whether other commits are about to come (sessions inside DATA): a lone request
        /// then waits `gatherWindow` for them, trading a fraction of a millisecond for fewer flushes.
        let companionsExpected: (@Sendable () -> Bool)?
        /// 1 while requests are pending (or the thread should stop), 0 when there is nothing to do.
        private let work = ConditionLock(value: 0)
        private let state = NIOLockedValueBox(State())

        init(rootFD: Int32, companionsExpected: (@Sendable () -> Bool)?) {
            self.rootFD = rootFD
            self.companionsExpected = companionsExpected
        }

        deinit {
            close(rootFD)
        }

        func submit(_ r: Request) {
            let (first, start) = state.withLockedValue { s -> (Bool, Bool) in
                s.pending.append(r)
                defer { s.started = true }
                return (s.pending.count == 1, !s.started)
            }
            if start { startThread() }
            if first { signal() }
        }

        func stop() {
            state.withLockedValue { $0.stopping = true }
            signal()
        }

        private func signal() {
            work.lock()
            work.unlock(withValue: 1)
        }

        private func startThread() {
            let started = SysCall.detachedThread(name: "postern-commit") { self.loop() }
            precondition(started, "cannot start the spool's commit thread")
        }

        /// The committer's thread: a batch at a time until the committer is gone.
        private func loop() {
            while true {
                work.lock(whenValue: 1)
                var (batch, stop) = state.withLockedValue { s -> ([Request], Bool) in
                    defer { s.pending = [] }
                    return (s.pending, s.stopping)
                }
                work.unlock(withValue: 0)
                if batch.isEmpty {
                    if stop { return }
                    continue
                }
                if batch.count == 1, let expected = companionsExpected, expected() {
                    usleep(GroupCommitter.gatherWindow)
                    batch += state.withLockedValue { s -> [Request] in defer { s.pending = [] }; return s.pending }
                }
                run(batch)
                report(batch)
                // Requests that came during the batch, or the end: go round again at once.
                if state.withLockedValue({ !$0.pending.isEmpty || $0.stopping }) { signal() }
            }
        }

        /// Tells each caller: one task per event loop for all of its requests in the batch.
        private func report(_ batch: [Request]) {
            var byLoop: [ObjectIdentifier: (loop: any EventLoop, requests: [Request])] = [:]
            for r in batch {
                if let done = r.done { done(r.failure.map { .failure($0) } ?? .success(())) }
                guard let loop = r.promise?.futureResult.eventLoop else { continue }
                byLoop[ObjectIdentifier(loop), default: (loop, [])].requests.append(r)
            }
            for (loop, requests) in byLoop.values {
                loop.execute {
                    for r in requests {
                        if let e = r.failure { r.promise!.fail(e) } else { r.promise!.succeed(()) }
                    }
                }
            }
        }

        private func run(_ batch: [Request]) {
            for r in batch {
                do { try r.prepare?() } catch { r.failure = error }
            }
            // A file that could not be made durable fails alone; files synced before go on.
            let unsynced = batch.filter { !$0.synced && $0.failure == nil }
            if unsynced.count == 1 {
                if fsync(unsynced[0].fd) != 0 { unsynced[0].failure = SpoolError("fsync", unsynced[0].from) }
            } else if unsynced.count > 1 && postern_syncfs(rootFD) != 0 {
                let e = errno
                for r in unsynced { r.failure = SpoolError("syncfs", r.from, errno: e) }
            }
            var renamed: [Request] = []
            for r in batch where r.failure == nil {
                guard let to = r.to else { continue }
                if rename(r.from, to) != 0 { r.failure = SpoolError("rename", r.from) } else { renamed.append(r) }
            }
            for directory in Set(renamed.compactMap(\.directory)) where postern_fsync_dir(directory) != 0 {
                // The clients get 451 and will send again: take the files back, or the message
                // would be delivered from scan/ and a second time after the retry.
                let e = errno
                for r in renamed where r.directory == directory {
                    unlink(r.to!)
                    r.failure = SpoolError("fsync", directory, errno: e)
                }
            }
        }
    }
}
