import Consensus
import Foundation
@testable import Server
import Testing

/// The apply thread's schedule: batches applied in order into one open
/// store transaction, committed when the interval ends or at once when
/// someone needs it (a reader, `waitIdle`, `stop`, a watcher), never lost.
@Suite struct ApplyQueueTests {
    /// What the thread did, in order: "apply 1,2" (batch indexes), "commit".
    final class Recorder: @unchecked Sendable {
        private let condition = NSCondition()
        private var events: [String] = []
        private var watched = false
        /// When set, applying the batch at index 1 waits for it (after recording).
        let gate: DispatchSemaphore?

        init(gate: DispatchSemaphore? = nil) { self.gate = gate }

        var work: ApplyQueue.Work {
            ApplyQueue.Work(
                apply: { batches in
                    self.record("apply " + batches.map { "\($0.state.index.rawValue)" }.joined(separator: ","))
                    if batches.first?.state.index == LogIndex(1) { self.gate?.wait() }
                },
                commit: { self.record("commit") },
                commitsAtOnce: { self.condition.withLock { self.watched } })
        }

        func record(_ event: String) {
            condition.lock()
            events.append(event)
            condition.broadcast()
            condition.unlock()
        }

        func setWatched(_ value: Bool) { condition.withLock { watched = value } }

        var log: [String] { condition.withLock { events } }

        /// Waits (up to `seconds`) until `count` events happened; returns them.
        func waitFor(_ count: Int, within seconds: TimeInterval = 10) -> [String] {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date().addingTimeInterval(seconds)
            while events.count < count && condition.wait(until: deadline) {}
            return events
        }
    }

    /// The longest commit interval, and a bound well inside it for what
    /// must happen "at once" (a thread's wake, even on a loaded machine).
    static let long = ApplyQueue.commitIntervalRange.upperBound
    static let soon: TimeInterval = 0.5

    static func batch(_ index: UInt64) -> ApplyQueue.Batch {
        ApplyQueue.Batch(entries: [], state: SnapshotMetadata(index: LogIndex(index), term: Term(1), membership: Membership(voters: [NodeID(1)])))
    }

    @Test func aReaderGetsTheOpenBatchCommittedAtOnce() {
        let recorder = Recorder()
        // The longest interval: the commit comes long before it ends, or
        // the request did nothing.
        let queue = ApplyQueue(commitInterval: Self.long)
        queue.start(recorder.work)
        queue.push(Self.batch(1))
        #expect(recorder.waitFor(1) == ["apply 1"])
        queue.requestCommit()
        #expect(recorder.waitFor(2, within: Self.soon) == ["apply 1", "commit"])
        queue.stop()
        #expect(recorder.log == ["apply 1", "commit"])
    }

    @Test func batchesShareTheCommitUntilTheIntervalEnds() {
        // The second batch arrives while the first is applied (held there,
        // so however slow the machine, it joins the open transaction).
        let gate = DispatchSemaphore(value: 0)
        let recorder = Recorder(gate: gate)
        let queue = ApplyQueue(commitInterval: .milliseconds(100))
        queue.start(recorder.work)
        queue.push(Self.batch(1))
        #expect(recorder.waitFor(1) == ["apply 1"])
        queue.push(Self.batch(2))
        gate.signal()
        #expect(recorder.waitFor(2) == ["apply 1", "apply 2"])
        // Nobody asks: the interval ends it.
        #expect(recorder.waitFor(3) == ["apply 1", "apply 2", "commit"])
        queue.stop()
        #expect(recorder.log.count == 3)
    }

    @Test func waitIdleAndStopReturnOnlyOnceEverythingIsCommitted() {
        let recorder = Recorder()
        let queue = ApplyQueue(commitInterval: .milliseconds(100))
        queue.start(recorder.work)
        queue.push(Self.batch(1))
        queue.waitIdle()
        #expect(recorder.log == ["apply 1", "commit"])
        queue.push(Self.batch(2))
        queue.stop()
        #expect(recorder.log == ["apply 1", "commit", "apply 2", "commit"])
    }

    /// A request made while nothing is open (a reader blocked by something
    /// else, a waiter on an index not applied yet) commits the next batch.
    @Test func aRequestWithNothingOpenCommitsTheNextBatch() {
        let recorder = Recorder()
        let queue = ApplyQueue(commitInterval: Self.long)
        queue.start(recorder.work)
        queue.requestCommit()
        queue.push(Self.batch(1))
        #expect(recorder.waitFor(2, within: Self.soon) == ["apply 1", "commit"])
        queue.stop()
    }

    @Test func watchersAndAZeroIntervalCommitEveryBatch() {
        let recorder = Recorder()
        recorder.setWatched(true)
        let watched = ApplyQueue(commitInterval: Self.long)
        watched.start(recorder.work)
        watched.push(Self.batch(1))
        #expect(recorder.waitFor(2, within: Self.soon) == ["apply 1", "commit"])
        watched.stop()

        let eager = Recorder()
        let zero = ApplyQueue(commitInterval: .zero)
        zero.start(eager.work)
        zero.push(Self.batch(1))
        #expect(eager.waitFor(2) == ["apply 1", "commit"])
        zero.push(Self.batch(2))
        #expect(eager.waitFor(4) == ["apply 1", "commit", "apply 2", "commit"])
        zero.stop()
    }
}
