import Consensus

/// Linearizable reads on their way to confirmation: on a leader its own
/// and those its followers forwarded; on a follower, those it forwarded.
///
/// A leader batches reads: every read that arrives before the next
/// heartbeat round rides on it, and an acknowledgement of round r from a
/// quorum confirms every read attached to a round up to r.
struct PaxosReads: Sendable {
    struct Read: Sendable {
        var state: ReadState
        /// The member to answer: the leader itself, or the follower that forwarded it.
        var from: NodeID
    }

    /// Reads with an index, not yet attached to a round.
    var unsent: [Read] = []
    /// Reads attached to a round, oldest first.
    var waiting: [(round: UInt64, read: Read)] = []
    /// The last heartbeat round sent.
    var round: UInt64 = 0
    /// The highest round each acceptor acknowledged.
    var acks: [NodeID: UInt64] = [:]
    /// When recent rounds were sent, for leases; the oldest are dropped.
    var sentTicks: [(round: UInt64, tick: UInt64)] = []
    static let sentTicksMax = 64
    /// A follower's reads forwarded to its leader, oldest first: answers
    /// are taken only for these, in the round they were asked in.
    private(set) var forwarded: [UInt64] = []

    /// The leader's pending reads.
    var count: Int { unsent.count + waiting.count }

    /// Record a read forwarded to the leader; at `limit` the oldest is
    /// forgotten (its answer is then dropped and its caller times out).
    mutating func forward(_ context: UInt64, limit: Int) {
        precondition(limit > 0, "a follower must be able to forward a read")
        if forwarded.count >= limit { forwarded.removeFirst(forwarded.count - limit + 1) }
        forwarded.append(context)
    }

    /// Whether `context` was forwarded and not yet answered; forgets it.
    mutating func takeForwarded(_ context: UInt64) -> Bool {
        guard let i = forwarded.firstIndex(of: context) else { return false }
        forwarded.remove(at: i)
        return true
    }

    mutating func recordSent(round: UInt64, tick: UInt64) {
        sentTicks.append((round, tick))
        if sentTicks.count > Self.sentTicksMax { sentTicks.removeFirst(sentTicks.count - Self.sentTicksMax) }
    }

    /// The reads attached to rounds up to `confirmed`, removed.
    mutating func release(through confirmed: UInt64) -> [Read] {
        var out: [Read] = []
        while let first = waiting.first, first.round <= confirmed {
            out.append(first.read)
            waiting.removeFirst()
        }
        return out
    }
}
