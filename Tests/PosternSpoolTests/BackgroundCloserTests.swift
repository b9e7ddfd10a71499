import Glibc
import NIOConcurrencyHelpers
import PosternSpool
import Testing

/// The last close of a removed queue file can wait on the disk (a trim): it is done on a
/// thread of its own, never by the caller, unless too many are waiting already.
@Suite struct BackgroundCloserTests {
    /// What the closer's `close` saw: each descriptor, and whether the caller's thread did it.
    final class Record: Sendable {
        let closed = NIOLockedValueBox<[(fd: Int32, byCaller: Bool)]>([])
        /// Held while the disk is "slow": the close of descriptor 1 waits for it (2 s at most,
        /// so that a closer that made its caller wait fails these tests instead of hanging them).
        let gate = ConditionLock(value: 0)
        let entered = ConditionLock(value: 0)
        let caller: pthread_t

        init() { caller = pthread_self() }

        func close(_ fd: Int32) {
            if fd == 1 {
                entered.lock()
                entered.unlock(withValue: 1)
                if gate.lock(whenValue: 1, timeoutSeconds: 2) { gate.unlock() }
            }
            let byCaller = pthread_equal(pthread_self(), caller) != 0
            closed.withLockedValue { $0.append((fd, byCaller)) }
        }

        func open() {
            gate.lock()
            gate.unlock(withValue: 1)
        }

        /// Waits up to 10 s for `n` closes.
        func waitFor(_ n: Int) -> [(fd: Int32, byCaller: Bool)] {
            for _ in 0..<1000 where closed.withLockedValue({ $0.count }) < n { usleep(10_000) }
            return closed.withLockedValue { $0 }
        }
    }

    @Test func theCallerDoesNotWaitForASlowClose() {
        let record = Record()
        let closer = BackgroundCloser(close: { record.close($0) })
        closer.close(1)   // returns although that close is stuck until the gate opens
        if record.entered.lock(whenValue: 1, timeoutSeconds: 10) { record.entered.unlock() }
        #expect(record.closed.withLockedValue { $0.isEmpty })
        closer.close(2)
        record.open()
        let closed = record.waitFor(2)
        #expect(closed.map(\.fd) == [1, 2])
        #expect(closed.allSatisfy { !$0.byCaller })
    }

    @Test func beyondTheBacklogTheCallerClosesItsOwn() {
        let record = Record()
        let closer = BackgroundCloser(backlog: 2, close: { record.close($0) })
        closer.close(1)
        if record.entered.lock(whenValue: 1, timeoutSeconds: 10) { record.entered.unlock() }   // the thread is stuck closing 1
        closer.close(2)
        closer.close(3)   // two wait: the backlog
        closer.close(4)   // closed at once, by the caller
        #expect(record.closed.withLockedValue { $0.map(\.fd) } == [4])
        record.open()
        let closed = record.waitFor(4)
        #expect(closed.map(\.fd) == [4, 1, 2, 3])
        #expect(closed.map(\.byCaller) == [true, false, false, false])
    }

    @Test func negativeDescriptorsAreIgnored() {
        let record = Record()
        let closer = BackgroundCloser(close: { record.close($0) })
        closer.close(-1)
        closer.close(5)
        #expect(record.waitFor(1).map(\.fd) == [5])
    }
}
