import Consensus
import Foundation

/// Shares one read-index round trip to the leader among every linearizable
/// read a follower serves at once. A read joins the next round trip that
/// starts after it arrived, never one already under way: the leader's
/// confirmation must postdate the read, or it could miss a write
/// acknowledged before the read began.
final class ReadIndexBatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [CheckedContinuation<LogIndex, any Error>] = []
    private var running = false
    private var fetches = 0

    /// Round trips made: under load, far fewer than reads.
    var roundTrips: Int { lock.withLock { fetches } }

    /// A read index from `fetch`, shared with every read waiting alongside.
    func readIndex(_ fetch: @escaping @Sendable () async throws -> LogIndex) async throws -> LogIndex {
        try await withCheckedThrowingContinuation { continuation in
            let start: Bool = lock.withLock {
                waiting.append(continuation)
                if running { return false }
                running = true
                return true
            }
            if start { Task { await self.drive(fetch) } }
        }
    }

    private func drive(_ fetch: @escaping @Sendable () async throws -> LogIndex) async {
        while true {
            let batch: [CheckedContinuation<LogIndex, any Error>] = lock.withLock {
                let batch = waiting
                waiting = []
                if batch.isEmpty { running = false } else { fetches += 1 }
                return batch
            }
            if batch.isEmpty { return }
            let result: Result<LogIndex, any Error>
            do { result = .success(try await fetch()) } catch { result = .failure(error) }
            for continuation in batch { continuation.resume(with: result) }
        }
    }
}
