import Consensus
import NIOConcurrencyHelpers
import NIOCore

/// How fresh this member last proved its store to be, for bounded-staleness
/// reads: the newest read index a leader confirmed without a lease, with
/// the moment it was asked for. Every write acknowledged before that moment
/// has an index at or below the read index (ReadIndex's guarantee), so once
/// this member has applied it, its store holds every write acknowledged
/// before then. The moment is this member's own monotonic clock: no clock
/// of another member, and no bound on their drift, enters.
///
/// Read and written from any thread; one lock, held for a few loads.
final class ReadFreshness: Sendable {
    struct Anchor: Sendable, Equatable {
        var askedAt: NIODeadline
        var index: LogIndex
    }

    private struct State {
        var anchor: Anchor?
        var refreshing = false
    }

    private let state = NIOLockedValueBox(State())

    /// The newest confirmed anchor.
    var anchor: Anchor? { state.withLockedValue { $0.anchor } }

    /// A read index asked for at `askedAt` came back as `index`. Kept if it
    /// was asked later than the anchor held (answers may arrive out of order).
    func confirmed(_ index: LogIndex, askedAt: NIODeadline) {
        state.withLockedValue { state in
            if let held = state.anchor, held.askedAt >= askedAt { return }
            state.anchor = Anchor(askedAt: askedAt, index: index)
        }
    }

    /// Whether a read served at `now` from a store that has applied
    /// `applied` meets `bound` by the anchor held.
    func meets(_ bound: StalenessBound, applied: LogIndex, now: NIODeadline) -> Bool {
        guard let anchor else { return false }
        return Self.age(of: anchor, at: now) <= bound.milliseconds && Self.entriesBehind(anchor, applied: applied) <= bound.revisions
    }

    /// Milliseconds since `anchor` was asked for, at `now`.
    static func age(of anchor: Anchor, at now: NIODeadline) -> UInt64 {
        now <= anchor.askedAt ? 0 : UInt64((now - anchor.askedAt).nanoseconds / 1_000_000)
    }

    /// Entries of the anchor's index not yet applied: an upper bound on the
    /// revisions missing, since an entry makes at most one revision.
    static func entriesBehind(_ anchor: Anchor, applied: LogIndex) -> UInt64 {
        anchor.index > applied ? anchor.index.rawValue - applied.rawValue : 0
    }

    /// Claim the one background refresh allowed at a time; false if one is
    /// under way. `refreshed()` gives it back.
    func startRefresh() -> Bool {
        state.withLockedValue { state in
            if state.refreshing { return false }
            state.refreshing = true
            return true
        }
    }

    func refreshed() {
        state.withLockedValue { $0.refreshing = false }
    }
}
