import Consensus
import Foundation

/// Committed entries on their way to the store, applied by a thread of
/// their own: the node loop hands them over and goes on to the next round
/// of consensus, so the store's commit (an fsync of its own) overlaps the
/// log's next fsync instead of following it.
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

    static let batchesMax = 64

    private let condition = NSCondition()
    private var batches: [Batch] = []
    private var busy = false
    private var stopping = false
    private var finished = false

    /// Start the thread. `apply` runs on it with every batch waiting at the
    /// time (in order), so that one store commit can cover them all.
    func start(_ apply: @escaping @Sendable ([Batch]) -> Void) {
        let thread = Thread { self.run(apply) }
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

    /// Returns once everything handed over is applied (before the store is
    /// replaced by a snapshot).
    func waitIdle() {
        condition.lock()
        defer { condition.unlock() }
        while !batches.isEmpty || busy { condition.wait() }
    }

    /// Apply what is queued, then end the thread.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
    }

    private func run(_ apply: ([Batch]) -> Void) {
        while true {
            condition.lock()
            while batches.isEmpty && !stopping { condition.wait() }
            if batches.isEmpty {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let taken = batches
            batches = []
            busy = true
            condition.broadcast()
            condition.unlock()
            apply(taken)
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
