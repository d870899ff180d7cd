import Consensus
import NIOConcurrencyHelpers
import NIOCore

/// Bounded-staleness reads (`ReadConsistency.boundedStaleness`): served
/// from this member's store, leader, follower or learner, when its newest
/// proof of freshness (`ReadFreshness`) meets the bound; otherwise after a
/// fresh read index, if one comes back and is applied within the bound's
/// time; otherwise refused. A bounded read thus never waits longer than its
/// bound, and a member cut off from its leader refuses it at once.
extension Node {
    /// Answers `done` once a read of this member's store meets `bound`, or
    /// with `ReadConsistencyError.stale` when it cannot within the bound's
    /// milliseconds. Called from any thread; `done` runs once.
    func boundedBarrier(_ bound: StalenessBound, then done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let arrived = NIODeadline.now()
        if isFreshEnough(bound, now: arrived) {
            done(.success(()))
            return
        }
        guard let leader = status.leader else {
            done(.failure(staleRefusal(bound)))
            return
        }
        let once = OnceCallback(done)
        let budget = TimeAmount.milliseconds(Int64(clamping: bound.milliseconds))
        let timer = loop.scheduleTask(deadline: arrived + budget) { [self] in once(.failure(staleRefusal(bound))) }
        let confirmed: @Sendable (Result<LogIndex, any Error>) -> Void = { [self] result in
            switch result {
            case .success(let index):
                // The read may lag the confirmed index by the bound's revisions.
                let needed = LogIndex(index.rawValue > bound.revisions ? index.rawValue - bound.revisions : 0)
                waitApplied(needed) { applied in
                    timer.cancel()
                    once(applied)
                }
            case .failure:
                timer.cancel()
                once(.failure(staleRefusal(bound)))
            }
        }
        confirmFreshness(leader: leader, then: confirmed)
    }

    /// Whether a read of this member's store meets `bound` now, by the
    /// proof of freshness it holds (refreshed in the background as it ages).
    func isFreshEnough(_ bound: StalenessBound, now: NIODeadline = .now()) -> Bool {
        if injectedBug == .servesBoundedReadsUnchecked { return true }
        guard freshness.meets(bound, applied: status.appliedIndex, now: now) else { return false }
        refreshIfAging(bound, now: now)
        return true
    }

    /// `boundedBarrier`, awaited.
    func boundedBarrier(_ bound: StalenessBound) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            boundedBarrier(bound) { continuation.resume(with: $0) }
        }
    }

    /// A read index without the lease, which `readIndex` records as this
    /// member's proof of freshness: asked of the core on the leader, shared
    /// with the linearizable reads under way on a follower.
    private func confirmFreshness(leader: NodeID, then done: @escaping @Sendable (Result<LogIndex, any Error>) -> Void) {
        if leader == id {
            readIndex(then: done)
        } else {
            remoteReads.readIndex({ [self] resume in readIndex(then: resume) }, then: done)
        }
    }

    /// Past half the bound's age, refresh the proof in the background (one
    /// at a time), so a steady stream of bounded reads is served at once.
    private func refreshIfAging(_ bound: StalenessBound, now: NIODeadline) {
        guard let anchor = freshness.anchor, ReadFreshness.age(of: anchor, at: now) > bound.milliseconds / 2,
              let leader = status.leader, freshness.startRefresh() else { return }
        confirmFreshness(leader: leader) { [freshness] _ in freshness.refreshed() }
    }

    /// The refusal, with what this member knows of its freshness now.
    private func staleRefusal(_ bound: StalenessBound) -> ReadConsistencyError {
        let anchor = freshness.anchor
        let now = NIODeadline.now()
        return .stale(bound: bound, confirmedAgoMilliseconds: anchor.map { ReadFreshness.age(of: $0, at: now) },
                      entriesBehind: anchor.map { ReadFreshness.entriesBehind($0, applied: status.appliedIndex) } ?? 0)
    }
}

/// A callback that runs at most once, whichever of its callers comes first.
private final class OnceCallback: Sendable {
    private let callback: NIOLockedValueBox<(@Sendable (Result<Void, any Error>) -> Void)?>

    init(_ callback: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        self.callback = NIOLockedValueBox(callback)
    }

    func callAsFunction(_ result: Result<Void, any Error>) {
        let taken = callback.withLockedValue { held in
            defer { held = nil }
            return held
        }
        taken?(result)
    }
}
