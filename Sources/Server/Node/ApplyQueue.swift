import Consensus
import Foundation

/// Committed entries on their way to the store, applied by a thread of
/// their own: the node loop hands them over and goes on to the next round
/// of consensus, so the store's work overlaps the log's next fsync instead
/// of following it.
///
/// The store's commits are grouped: the thread applies batches into one
/// open store transaction (answering their proposers at once) and commits
/// it `commitInterval` after it opened, or as soon as someone needs the
/// store committed: a reader (`requestCommit`), a caller of `waitIdle`,
/// `stop`, or a watcher (watch events are read from committed state).
/// A single writing client's entries thus share a commit instead of costing
/// one each. LMDB writes every page a commit touched, and the next
/// checkpoint flushes them: under 100 writing clients the members sent the
/// disk seven times etcd's bytes, and with no checkpoints at all one client
/// put about 20% faster (BENCHMARKS.md). etcd's backend batches its commits
/// too, every 100 ms, but its readers read through an in-memory buffer;
/// ours read the committed store, so they ask for the commit instead.
///
/// Bounded: when `batchesMax` hand-offs wait, the node loop waits too,
/// rather than let memory grow while the store falls behind.
final class ApplyQueue: @unchecked Sendable {
    /// Entries committed together, and what the log looked like after the
    /// last of them (recorded in the store with them).
    struct Batch {
        var entries: [Entry]
        var state: SnapshotMetadata
    }

    /// What the thread does with the store: apply batches into the open
    /// transaction (opening it when none is), and commit it; `commitsAtOnce`
    /// says whether someone follows every commit (watchers), so that
    /// applied entries should not wait for the interval.
    struct Work: Sendable {
        let apply: @Sendable ([Batch]) -> Void
        let commit: @Sendable () -> Void
        let commitsAtOnce: @Sendable () -> Bool
    }

    static let batchesMax = 64
    /// How long applied entries may wait for their store commit when nobody
    /// asks for it sooner; zero commits every hand-off.
    static let commitIntervalDefault = Duration.milliseconds(5)
    static let commitIntervalRange = Duration.zero...Duration.seconds(1)

    let commitInterval: Duration
    private let condition = NSCondition()
    private var batches: [Batch] = []
    private var busy = false
    /// The thread holds applied entries in an open store transaction.
    private var holdsOpenCommit = false
    /// Someone waits for the open transaction to commit.
    private var commitRequested = false
    private var stopping = false
    private var finished = false

    init(commitInterval: Duration = ApplyQueue.commitIntervalDefault) {
        precondition(Self.commitIntervalRange.contains(commitInterval), "apply commit interval out of range")
        self.commitInterval = commitInterval
    }

    /// Start the thread. `work.apply` runs on it with every batch waiting at
    /// the time (in order); `work.commit` after, when the commit is due.
    func start(_ work: Work) {
        let thread = Thread { self.run(work) }
        thread.name = "ballot-apply"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Hand over a batch; waits while the queue is full.
    func push(_ batch: Batch) {
        condition.lock()
        defer { condition.unlock() }
        precondition(!stopping, "entries handed over after stop")
        while batches.count >= Self.batchesMax { condition.wait() }
        batches.append(batch)
        condition.broadcast()
    }

    /// Commit what the thread holds now rather than when due, or the next
    /// batch at once if it holds none: for a reader that would otherwise
    /// wait for the commit (the thread holds the store alone until then).
    /// Returns at once.
    func requestCommit() {
        condition.lock()
        defer { condition.unlock() }
        commitRequested = true
        condition.broadcast()
    }

    /// Returns once everything handed over is applied and committed (before
    /// the store is replaced by a snapshot).
    func waitIdle() {
        condition.lock()
        defer { condition.unlock() }
        while !batches.isEmpty || busy || holdsOpenCommit {
            commitRequested = true
            condition.broadcast()
            condition.wait()
        }
    }

    /// Apply and commit what is queued, then end the thread.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
    }

    private func run(_ work: Work) {
        var openedAt: ContinuousClock.Instant?
        while true {
            condition.lock()
            while batches.isEmpty && !stopping {
                guard let openedAt else {
                    condition.wait()
                    continue
                }
                if commitRequested { break }
                let left = openedAt + commitInterval - ContinuousClock.now
                if left <= .zero { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.seconds(left)))
            }
            let taken = batches
            batches = []
            if openedAt == nil && !taken.isEmpty { openedAt = ContinuousClock.now }
            let commit = openedAt.map { commitRequested || stopping || ContinuousClock.now - $0 >= commitInterval } ?? false
            // A request made while nothing was open holds for the next batch.
            if commit { commitRequested = false }
            if taken.isEmpty && openedAt == nil && stopping {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            busy = true
            holdsOpenCommit = openedAt != nil
            condition.broadcast()
            condition.unlock()
            if !taken.isEmpty { work.apply(taken) }
            if commit || (openedAt != nil && work.commitsAtOnce()) {
                work.commit()
                openedAt = nil
            }
            condition.lock()
            busy = false
            holdsOpenCommit = openedAt != nil
            condition.broadcast()
            condition.unlock()
        }
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
