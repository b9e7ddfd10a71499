import CPosternShims
import Glibc

/// Group commit for directory fsyncs. Every message needs its `rename` made durable by an
/// fsync of the target directory; when many sessions commit at once, one fsync started after
/// their renames covers them all. A caller renames first, then calls `sync()`, which returns
/// once an fsync that began after the call has completed.
public final class DirectorySyncer: @unchecked Sendable {
    public let path: String
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var requested: UInt64 = 0
    private var completed: UInt64 = 0
    private var running = false
    private var lastError: Int32 = 0
    private var failedGeneration: UInt64 = 0

    public init(path: String) {
        self.path = path
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    public func sync() throws(SpoolError) {
        pthread_mutex_lock(&mutex)
        requested += 1
        let mine = requested
        while completed < mine {
            if running {
                pthread_cond_wait(&cond, &mutex)
                continue
            }
            running = true
            let target = requested
            pthread_mutex_unlock(&mutex)
            let rc = postern_fsync_dir(path)
            let err = errno
            pthread_mutex_lock(&mutex)
            running = false
            completed = target
            if rc != 0 { lastError = err; failedGeneration = target }
            pthread_cond_broadcast(&cond)
        }
        // A failed fsync fails every caller it was meant to cover.
        let failed = failedGeneration >= mine && lastError != 0
        let err = lastError
        pthread_mutex_unlock(&mutex)
        if failed { throw SpoolError("fsync", path, errno: err) }
    }
}
