import CPosternShims
import Glibc
import NIOConcurrencyHelpers
import PosternUtil

/// Group commit for new queue files (DESIGN.md §2: "batch fsyncs across concurrent sessions
/// where it keeps the guarantee"). Each caller has written and not yet synced a file in
/// `incoming/`; one leader at a time takes every request waiting and
///
/// 1. makes their data durable: `fsync` of the file when it is alone, one `syncfs(2)` of the
///    spool's file system when there are several (one flush instead of one per message);
/// 2. renames each into its target state (`scan/`, or `outgoing/` for a message whose
///    before-queue verdict left scannerd nothing to do, `hold/` for a loop);
/// 3. `fsync`s each target directory once for all the renames into it.
///
/// A caller returns only after all three steps covered its own file, so a 250 still means the
/// message is on disk. Requests arriving while a leader works form the next batch. A request
/// may ask for step 1 alone (`to: nil`: synchronous mode syncs the message while scannerd scans
/// it), or for steps 2–3 alone (`synced: true`, once that sync is done).
/// XXX: `syncfs` also flushes other dirty data on that file system; a spool on its own file
/// system keeps that cost to Postern's own files.
public final class GroupCommitter: Sendable {
    /// One caller's file, and how its commit ended (set by the leader that ran it).
    package final class Request: @unchecked Sendable {   // `outcome` is written before `wake` opens
        package let fd: Int32
        package let from: String
        package let to: String?
        /// The directory `to` is in, fsynced after the rename.
        package let directory: String?
        package let synced: Bool
        package var outcome: (call: String, errno: Int32)?
        /// 1 once the caller may go on: its commit is done, or it is the next leader.
        package let wake = ConditionLock(value: 0)

        package var id: ObjectIdentifier { ObjectIdentifier(self) }

        package init(fd: Int32, from: String, to: String?, synced: Bool) {
            self.fd = fd
            self.from = from
            self.to = to
            self.directory = to.map(GroupCommitter.directory(of:))
            self.synced = synced
        }
    }

    private struct State {
        package var pending: [Request] = []
        package var leading = false
    }

    private let rootFD: Int32
    private let state = NIOLockedValueBox(State())
    /// Tells whether other commits are about to come (sessions inside DATA): a lone leader then
    /// waits `gatherWindow` for them, trading a fraction of a millisecond for fewer flushes.
    private let companionsExpected: (@Sendable () -> Bool)?
    package static let gatherWindow: UInt32 = 800   // microseconds

    public init(layout: SpoolLayout, companionsExpected: (@Sendable () -> Bool)? = nil) throws(SpoolError) {
        self.companionsExpected = companionsExpected
        rootFD = open(layout.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw SpoolError("open", layout.root) }
    }

    package static func directory(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    }

    deinit {
        close(rootFD)
    }

    /// Makes `fd`'s file durable (unless `synced`) and renames `from` to `to` (within the spool;
    /// nil: no rename). Blocking.
    ///
    /// The first caller leads: it takes every request waiting, runs them as one batch, wakes
    /// their callers and hands the lead to the oldest request that arrived meanwhile.
    public func commit(fd: Int32, from: String, to: String?, synced: Bool = false) throws(SpoolError) {
        let me = Request(fd: fd, from: from, to: to, synced: synced)
        let leads = state.withLockedValue { s -> Bool in
            s.pending.append(me)
            if s.leading { return false }
            s.leading = true
            return true
        }
        if !leads {
            me.wake.lock(whenValue: 1)
            me.wake.unlock()
        }
        while me.outcome == nil {   // this caller leads
            var batch = state.withLockedValue { s -> [Request] in defer { s.pending = [] }; return s.pending }
            if batch.count == 1, let expected = companionsExpected, expected() {
                usleep(GroupCommitter.gatherWindow)
                batch += state.withLockedValue { s -> [Request] in defer { s.pending = [] }; return s.pending }
            }
            let outcome = run(batch)
            for r in batch { r.outcome = outcome[r.id] }
            let next = state.withLockedValue { s -> Request? in
                if s.pending.isEmpty { s.leading = false; return nil }
                return s.pending[0]   // stays pending: it takes its own batch
            }
            for r in batch where r !== me { Self.release(r.wake) }
            if let next { Self.release(next.wake) }
        }
        let result = me.outcome!
        if result.errno != 0 { throw SpoolError(result.call, result.call == "rename" ? from : me.directory ?? from, errno: result.errno) }
    }

    private static func release(_ wake: ConditionLock<Int>) {
        wake.lock()
        wake.unlock(withValue: 1)
    }

    private func run(_ batch: [Request]) -> [ObjectIdentifier: (call: String, errno: Int32)] {
        var out: [ObjectIdentifier: (call: String, errno: Int32)] = [:]
        // A file that could not be made durable fails alone; files synced before go on.
        let unsynced = batch.filter { !$0.synced }
        if unsynced.count == 1 {
            if fsync(unsynced[0].fd) != 0 { out[unsynced[0].id] = ("fsync", errno) }
        } else if unsynced.count > 1 && postern_syncfs(rootFD) != 0 {
            let e = errno
            for r in unsynced { out[r.id] = ("syncfs", e) }
        }
        var renamed: [Request] = []
        for r in batch where out[r.id] == nil {
            guard let to = r.to else { continue }
            if rename(r.from, to) != 0 { out[r.id] = ("rename", errno) } else { renamed.append(r) }
        }
        for directory in Set(renamed.compactMap(\.directory)) where postern_fsync_dir(directory) != 0 {
            // The clients get 451 and will send again: take the files back, or the message
            // would be delivered from scan/ and a second time after the retry.
            let e = errno
            for r in renamed where r.directory == directory {
                unlink(r.to!)
                out[r.id] = ("fsync", e)
            }
        }
        for r in batch where out[r.id] == nil { out[r.id] = ("", 0) }
        return out
    }
}
