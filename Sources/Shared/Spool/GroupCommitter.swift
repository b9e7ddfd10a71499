import CPosternShims
import Glibc

/// Group commit for new queue files (DESIGN.md §2: "batch fsyncs across concurrent sessions
/// where it keeps the guarantee"). Each caller has written and not yet synced a file in
/// `incoming/`; one leader at a time takes every request waiting and
///
/// 1. makes their data durable: `fsync` of the file when it is alone, one `syncfs(2)` of the
///    spool's file system when there are several (one flush instead of one per message);
/// 2. renames each into the target state;
/// 3. `fsync`s the target directory once for all the renames.
///
/// A caller returns only after all three steps covered its own file, so a 250 still means the
/// message is on disk. Requests arriving while a leader works form the next batch. A request
/// may ask for step 1 alone (`to: nil`: synchronous mode syncs the message while scannerd scans
/// it), or for steps 2–3 alone (`synced: true`, once that sync is done).
/// XXX: `syncfs` also flushes other dirty data on that file system; a spool on its own file
/// system keeps that cost to Postern's own files.
public final class GroupCommitter: @unchecked Sendable {
    struct Request {
        let id: UInt64
        let fd: Int32
        let from: String
        let to: String?
        let synced: Bool
    }

    private let rootFD: Int32
    private let targetDirectory: String
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var pending: [Request] = []
    private var results: [UInt64: (call: String, errno: Int32)] = [:]
    private var leading = false
    private var nextID: UInt64 = 0
    /// Tells whether other commits are about to come (sessions inside DATA): a lone leader then
    /// waits `gatherWindow` for them, trading a fraction of a millisecond for fewer flushes.
    private let companionsExpected: (@Sendable () -> Bool)?
    static let gatherWindow: UInt32 = 800   // microseconds

    public init(layout: SpoolLayout, target: SpoolState, companionsExpected: (@Sendable () -> Bool)? = nil) throws(SpoolError) {
        self.companionsExpected = companionsExpected
        rootFD = open(layout.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw SpoolError("open", layout.root) }
        targetDirectory = layout.directory(target)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        close(rootFD)
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// Makes `fd`'s file durable (unless `synced`) and renames `from` to `to` (within the spool;
    /// nil: no rename). Blocking.
    public func commit(fd: Int32, from: String, to: String?, synced: Bool = false) throws(SpoolError) {
        pthread_mutex_lock(&mutex)
        nextID += 1
        let me = nextID
        pending.append(Request(id: me, fd: fd, from: from, to: to, synced: synced))
        while results[me] == nil {
            if leading {
                pthread_cond_wait(&cond, &mutex)
                continue
            }
            leading = true
            var batch = pending
            pending = []
            if batch.count == 1, let expected = companionsExpected, expected() {
                pthread_mutex_unlock(&mutex)
                usleep(GroupCommitter.gatherWindow)
                pthread_mutex_lock(&mutex)
                batch += pending
                pending = []
            }
            pthread_mutex_unlock(&mutex)
            let outcome = run(batch)
            pthread_mutex_lock(&mutex)
            for (k, v) in outcome { results[k] = v }
            leading = false
            pthread_cond_broadcast(&cond)
        }
        let result = results.removeValue(forKey: me)!
        pthread_mutex_unlock(&mutex)
        if result.errno != 0 { throw SpoolError(result.call, result.call == "rename" ? from : targetDirectory, errno: result.errno) }
    }

    private func run(_ batch: [Request]) -> [UInt64: (call: String, errno: Int32)] {
        var out: [UInt64: (call: String, errno: Int32)] = [:]
        let unsynced = batch.filter { !$0.synced }
        if unsynced.count == 1 {
            if fsync(unsynced[0].fd) != 0 { return [unsynced[0].id: ("fsync", errno)] }
        } else if unsynced.count > 1 && postern_syncfs(rootFD) != 0 {
            let e = errno
            for r in batch { out[r.id] = ("syncfs", e) }
            return out
        }
        var renamed: [Request] = []
        for r in batch {
            guard let to = r.to else { continue }
            if rename(r.from, to) != 0 { out[r.id] = ("rename", errno) } else { renamed.append(r) }
        }
        if !renamed.isEmpty && postern_fsync_dir(targetDirectory) != 0 {
            // The clients get 451 and will send again: take the files back, or the message
            // would be delivered from scan/ and a second time after the retry.
            let e = errno
            for r in renamed {
                unlink(r.to!)
                out[r.id] = ("fsync", e)
            }
        }
        for r in batch where out[r.id] == nil { out[r.id] = ("", 0) }
        return out
    }
}
