import Consensus
import Foundation

/// Shares one read-index round trip to the leader among every linearizable
/// read a follower serves at once. A read joins the next round trip that
/// starts after it arrived, never one already under way: the leader's
/// confirmation must postdate the read, or it could miss a write
/// acknowledged before the read began.
final class ReadIndexBatcher: @unchecked Sendable {
    typealias Resume = @Sendable (Result<LogIndex, any Error>) -> Void
    /// One round trip: answers through its argument, once.
    typealias Fetch = @Sendable (@escaping Resume) -> Void

    private let lock = NSLock()
    private var waiting: [Resume] = []
    private var running = false
    private var fetches = 0

    /// Round trips made: under load, far fewer than reads.
    var roundTrips: Int { lock.withLock { fetches } }

    /// A read index from `fetch`, shared with every read waiting alongside.
    func readIndex(_ fetch: @escaping Fetch) async throws -> LogIndex {
        try await withCheckedThrowingContinuation { continuation in
            readIndex(fetch) { continuation.resume(with: $0) }
        }
    }

    /// `readIndex`, answered through `resume` on the thread that settles
    /// the round trip.
    func readIndex(_ fetch: @escaping Fetch, then resume: @escaping Resume) {
        let start: Bool = lock.withLock {
            waiting.append(resume)
            if running { return false }
            running = true
            return true
        }
        if start { next(fetch) }
    }

    /// Start a round trip for everything waiting now; when it answers,
    /// answer them and start the next for whatever came meanwhile.
    private func next(_ fetch: @escaping Fetch) {
        let batch: [Resume] = lock.withLock {
            let batch = waiting
            waiting = []
            if batch.isEmpty { running = false } else { fetches += 1 }
            return batch
        }
        if batch.isEmpty { return }
        fetch { [self] result in
            for resume in batch { resume(result) }
            next(fetch)
        }
    }
}
