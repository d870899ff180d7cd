#if canImport(Glibc)
import Glibc
#endif

/// Readers share the store; the apply thread (and a snapshot install or a
/// defragmentation) has it alone. LMDB readers need no lock against each
/// other, but the store's counters and its open batch belong to the writer
/// while it writes, so readers wait for its commit and then run together.
///
/// Writers are preferred: a steady stream of reads must not starve the
/// apply thread, which every write and every linearizable read waits for.
final class StoreLock: @unchecked Sendable {
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rwlock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        let created = pthread_rwlock_init(rwlock, &attributes)
        precondition(created == 0, "pthread_rwlock_init failed: \(created)")
        pthread_rwlockattr_destroy(&attributes)
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    /// Run `body` beside other readers, after any writer finished.
    /// `whenWriterHolds` runs first if a writer holds the lock (or waits for
    /// it), so the caller can ask it to finish sooner (`ApplyQueue.requestCommit`).
    func reading<T>(whenWriterHolds: () -> Void = {}, _ body: () throws -> T) rethrows -> T {
        if pthread_rwlock_tryrdlock(rwlock) != 0 {
            whenWriterHolds()
            let locked = pthread_rwlock_rdlock(rwlock)
            precondition(locked == 0, "pthread_rwlock_rdlock failed: \(locked)")
        }
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }

    /// Take the store alone (until `unlock()`).
    func lock() {
        let locked = pthread_rwlock_wrlock(rwlock)
        precondition(locked == 0, "pthread_rwlock_wrlock failed: \(locked)")
    }

    func unlock() {
        pthread_rwlock_unlock(rwlock)
    }
}
