import Consensus
import Foundation
@testable import Server
import Testing

@Suite struct ReadIndexBatcherTests {
    /// Counts fetches; each returns the number it was, and the first waits
    /// for `release` so that reads pile up behind it.
    final class Leader: @unchecked Sendable {
        private let lock = NSLock()
        private var started = 0
        private var gate: CheckedContinuation<Void, Never>?
        private var opened = false

        func fetch() async -> LogIndex {
            let number = lock.withLock {
                started += 1
                return started
            }
            if number == 1 {
                await withCheckedContinuation { continuation in
                    let open = lock.withLock {
                        if opened { return true }
                        gate = continuation
                        return false
                    }
                    if open { continuation.resume() }
                }
            }
            return LogIndex(UInt64(number))
        }

        var fetchesStarted: Int { lock.withLock { started } }

        /// `fetch` as the batcher calls it: answered through its argument.
        var roundTrip: ReadIndexBatcher.Fetch {
            { resume in Task { resume(.success(await self.fetch())) } }
        }

        func release() {
            let continuation = lock.withLock {
                opened = true
                return gate
            }
            continuation?.resume()
        }
    }

    @Test func readsArrivingDuringARoundTripWaitForTheNextOne() async throws {
        let batcher = ReadIndexBatcher()
        let leader = Leader()
        let first = Task { try await batcher.readIndex(leader.roundTrip) }
        while leader.fetchesStarted == 0 { try await Task.sleep(for: .milliseconds(1)) }
        // 50 reads arrive while the first round trip is under way.
        let later = (0..<50).map { _ in Task { try await batcher.readIndex(leader.roundTrip) } }
        try await Task.sleep(for: .milliseconds(50))
        leader.release()
        #expect(try await first.value == 1)
        for task in later {
            // Never the round trip that started before they arrived.
            #expect(try await task.value == 2)
        }
        #expect(batcher.roundTrips == 2)
    }

    @Test func aFailedRoundTripFailsItsReadsOnly() async throws {
        struct Unreachable: Error {}
        let batcher = ReadIndexBatcher()
        await #expect(throws: Unreachable.self) { try await batcher.readIndex { $0(.failure(Unreachable())) } }
        #expect(try await batcher.readIndex { $0(.success(LogIndex(7))) } == 7)
    }
}
