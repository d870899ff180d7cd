import Consensus
import Foundation

/// A write-ahead log shared by many concurrent writers, with group commit.
///
/// Writers queue records under a lock and wait; one dedicated sync thread
/// takes everything queued, writes it and `fdatasync`s it, then resumes
/// exactly the writers that sync covered. One fsync thus acknowledges
/// every append that arrived during the previous one. Async writers
/// suspend on a continuation (no thread blocks); plain threads block on a
/// semaphore.
///
/// `@unchecked Sendable`: all state is touched only with `condition` held,
/// except the bytes handed to the sync thread, which no one else can reach.
public final class GroupCommitLog: @unchecked Sendable {
    private enum Waiter {
        case thread(DispatchSemaphore, UnsafeMutablePointer<StorageError?>)
        case task(CheckedContinuation<Void, any Error>)
    }

    private let condition = NSCondition()
    private let wal: WriteAheadLog
    private var appended: UInt64 = 0
    private var waiters: [(ticket: UInt64, waiter: Waiter)] = []
    private var failure: StorageError?
    private var closing = false
    private var syncing = false
    /// The sync thread waits for work: only then does an append wake it.
    private var syncThreadIdle = false
    private var thread: Thread?
    /// Syncs performed, for benchmarks and metrics.
    public private(set) var syncCount: UInt64 = 0

    /// How long the sync thread may wait for writers it just released.
    public let gatherWaitNanoseconds: UInt64

    /// Starts the sync thread, which keeps this log alive until `close()`.
    public init(_ wal: WriteAheadLog, gatherWaitNanoseconds: UInt64 = GroupCommitLog.gatherWaitDefaultNanoseconds) {
        precondition(Self.gatherWaitRangeNanoseconds.contains(gatherWaitNanoseconds), "gather wait out of range")
        self.wal = wal
        self.gatherWaitNanoseconds = gatherWaitNanoseconds
        let thread = Thread { self.syncLoop() }
        thread.name = "ballot-wal-sync"
        self.thread = thread
        thread.start()
    }

    /// Stop the sync thread once everything queued is durable.
    public func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        condition.unlock()
    }

    /// Append entries (and a hard state); returns once they are durable.
    public func commit(hardState: HardState? = nil, entries: [Entry]) throws(StorageError) {
        try commit { _ in (hardState, entries) }
    }

    /// Append what `build` makes of the log's current last index (under the
    /// lock, so concurrent writers get consecutive indexes); returns the last
    /// index appended once it is durable. Blocks the calling thread.
    @discardableResult
    public func commit(building build: (LogIndex) -> (hardState: HardState?, entries: [Entry])) throws(StorageError) -> LogIndex {
        let semaphore = DispatchSemaphore(value: 0)
        let result = UnsafeMutablePointer<StorageError?>.allocate(capacity: 1)
        result.initialize(to: nil)
        defer { result.deallocate() }
        let last = try enqueue(build) { .thread(semaphore, result) }
        semaphore.wait()
        if let error = result.pointee { throw error }
        return last
    }

    /// The same, suspending the task instead of blocking a thread.
    @discardableResult
    public func commit(building build: (LogIndex) -> (hardState: HardState?, entries: [Entry])) async throws -> LogIndex {
        var last = LogIndex.zero
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                last = try enqueue(build) { .task(continuation) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
        return last
    }

    private func enqueue(_ build: (LogIndex) -> (hardState: HardState?, entries: [Entry]), _ waiter: () -> Waiter) throws(StorageError) -> LogIndex {
        condition.lock()
        defer { condition.unlock() }
        var made = build(wal.lastIndex)
        var records = WriteAheadLog.encode(hardState: made.hardState, entries: made.entries)
        // A segment rotation does its own I/O: never while the sync thread writes.
        while syncing && wal.wouldRotate(records) {
            condition.wait()
            made = build(wal.lastIndex)
            records = WriteAheadLog.encode(hardState: made.hardState, entries: made.entries)
        }
        if let failure { throw failure }
        if closing { throw .io(errno: EBADF, operation: "commit", path: wal.directory) }
        try wal.append(records, hardState: made.hardState, firstEntry: made.entries.first?.index)
        appended += 1
        waiters.append((appended, waiter()))
        if syncThreadIdle { condition.broadcast() }
        return wal.lastIndex
    }

    /// The longest the sync thread waits for writers it just released to
    /// append again, so one sync carries them all instead of half of them.
    /// Zero by default: over zero-filled segments a sync costs about the
    /// same whatever it carries, so syncing at once and letting writers
    /// settle into two alternating cohorts (one appending while the other's
    /// sync runs) beats waiting (BENCHMARKS.md, `--gather-wait-microseconds`).
    /// A disk whose flush cost grows with the bytes may want a wait.
    public static let gatherWaitDefaultNanoseconds: UInt64 = 0
    public static let gatherWaitRangeNanoseconds: ClosedRange<UInt64> = 0...10_000_000

    private func syncLoop() {
        condition.lock()
        var released = 0
        var stillWaiting = 0
        var lastSyncNanoseconds: UInt64 = 0
        while true {
            while waiters.isEmpty && !closing {
                syncThreadIdle = true
                condition.wait()
                syncThreadIdle = false
            }
            if waiters.isEmpty && closing { break }
            if released > 1 && gatherWaitNanoseconds > 0 && !closing {
                // Writers released by the last sync are appending again: wait a
                // moment (at most half a sync) for them, or the next sync
                // carries only those who were already waiting.
                let goal = released + stillWaiting
                let wait = min(gatherWaitNanoseconds, lastSyncNanoseconds / 2)
                let deadline = Date().addingTimeInterval(Double(wait) / 1e9)
                syncThreadIdle = true
                while waiters.count < goal && !closing && condition.wait(until: deadline) {}
                syncThreadIdle = false
            }
            let target = appended
            let (data, offset, fd, path) = wal.takePending()
            syncing = true
            condition.unlock()
            let started = DispatchTime.now().uptimeNanoseconds
            var syncError: StorageError?
            do { try WriteAheadLog.writeAndSync(data, at: offset, fd: fd, path: path) } catch { syncError = error }
            lastSyncNanoseconds = DispatchTime.now().uptimeNanoseconds - started
            condition.lock()
            syncing = false
            syncCount += 1
            if let syncError { failure = failure ?? syncError }
            // A failed fsync leaves the file's state unknown: everyone fails from now on.
            // Tickets rise along `waiters`, so the covered ones are a prefix.
            let covered = failure != nil ? waiters.count : (waiters.firstIndex { $0.ticket > target } ?? waiters.count)
            let done = Array(waiters.prefix(covered))
            waiters.removeFirst(covered)
            released = done.count
            stillWaiting = waiters.count
            let failed = failure
            condition.broadcast()
            // Resume outside the lock, so the writers woken do not queue on it
            // behind this thread. (Handing this to another thread measured
            // slower: one more wake-up on every writer's path.)
            condition.unlock()
            for entry in done {
                switch entry.waiter {
                case .thread(let semaphore, let result):
                    result.pointee = failed
                    semaphore.signal()
                case .task(let continuation):
                    if let failed { continuation.resume(throwing: failed) } else { continuation.resume() }
                }
            }
            condition.lock()
        }
        thread = nil
        condition.broadcast()
        condition.unlock()
    }
}
