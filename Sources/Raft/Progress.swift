import Consensus

/// A leader's view of one follower's log.
struct Progress: Sendable, Equatable {
    enum State: Sendable, Equatable, CustomStringConvertible {
        /// Unsure where the follower's log ends: one append at a time.
        case probe
        /// Streaming optimistically, up to the in-flight window.
        case replicate
        /// Waiting for the follower to install the snapshot at `pendingIndex`.
        case snapshot(pendingIndex: LogIndex)

        var description: String {
            switch self {
            case .probe: "probe"
            case .replicate: "replicate"
            case .snapshot(let i): "snapshot@\(i)"
            }
        }
    }

    /// Highest index known to match the leader's log.
    var match: LogIndex = .zero
    /// Next index to send.
    var next: LogIndex
    var state: State = .probe
    /// In probe state: an append is outstanding, wait for its answer or a heartbeat.
    var probeSent = false
    /// Last index of each unacknowledged append, oldest first; bounded by the window.
    var inflight: [LogIndex] = []
    /// Heard from since the last quorum check.
    var recentActive = true
    /// Ticks spent in the current state; a lost snapshot is retried after a while.
    var ticksInState = 0

    init(next: LogIndex) { self.next = next }

    func isPaused(window: Int) -> Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflight.count >= window
        case .snapshot: true
        }
    }

    mutating func becomeProbe() {
        if case .snapshot(let pending) = state {
            next = max(match + 1, pending + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflight.removeAll()
        ticksInState = 0
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflight.removeAll()
        ticksInState = 0
    }

    mutating func becomeSnapshot(_ index: LogIndex) {
        state = .snapshot(pendingIndex: index)
        probeSent = false
        inflight.removeAll()
        ticksInState = 0
    }

    /// Record an acknowledgement up to `index`; false when it tells nothing new.
    mutating func acknowledge(_ index: LogIndex) -> Bool {
        var updated = false
        if index > match {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        inflight.removeAll { $0 <= index }
        return updated
    }

    /// Step back after a rejection of `rejected`; `matchHint` is where the
    /// leader's log could next match. False when the rejection is stale.
    /// A rejection at or below `match` is always stale: the follower
    /// promised those entries durably. Answering it anyway would let one
    /// broken (or duplicated) rejection bounce between the two forever.
    mutating func stepBack(rejected: LogIndex, matchHint: LogIndex) -> Bool {
        if rejected <= match { return false }
        switch state {
        case .replicate:
            next = max(min(rejected, matchHint + 1), match + 1)
            return true
        case .probe:
            if rejected != next - 1 { return false }
            next = max(min(rejected, matchHint + 1), match + 1)
            probeSent = false
            return true
        case .snapshot:
            return false
        }
    }
}
