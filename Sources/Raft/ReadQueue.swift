import Consensus

/// Linearizable reads on their way to confirmation: a leader's own and
/// those its followers forwarded, and on a follower, those it forwarded.
///
/// A leader batches reads: every read that arrives before the next
/// heartbeat round rides on it, and an acknowledgement of round r from a
/// quorum confirms every read attached to a round up to r (a later
/// acknowledgement proves leadership at a later moment).
struct ReadQueue: Sendable {
    /// A read with its index, and the member to answer: the leader itself,
    /// or the follower that forwarded it.
    struct Read: Sendable {
        var state: ReadState
        var from: NodeID
    }

    /// Reads that arrived before the leader committed an entry of its own
    /// term: until then it does not know the commit index (Raft thesis §6.4).
    var awaitingCommit: [(context: UInt64, from: NodeID, mayUseLease: Bool)] = []
    /// Reads with an index, not yet attached to a round.
    var unsent: [Read] = []
    /// Reads attached to a round, oldest first.
    var waiting: [(round: UInt64, read: Read)] = []
    /// The last heartbeat round sent.
    var round: UInt64 = 0
    /// Highest round each follower acknowledged.
    var acks: [NodeID: UInt64] = [:]
    /// When recent rounds were sent, for leases; the oldest are dropped.
    var sentTicks: [(round: UInt64, tick: UInt64)] = []
    static let sentTicksMax = 64
    static let forwardedSlack = 64
    /// A follower's reads forwarded to its leader in this term, by context,
    /// awaiting the answer. Emptied with the rest of the queue whenever the
    /// term, the role or the leader changes, so an answer is taken only in
    /// the term the read was asked in.
    private(set) var forwarded: Set<UInt64> = []
    /// `forwarded` in the order sent (answered ones linger until compacted),
    /// from `forwardedHead` on: the oldest goes first when the set is full.
    private var forwardedOrder: [UInt64] = []
    private var forwardedHead = 0

    /// The leader's pending reads (a follower holds none of these).
    var count: Int { awaitingCommit.count + unsent.count + waiting.count }

    /// Record a read forwarded to the leader. At `limit`, the oldest still
    /// unanswered is forgotten (its answer will be dropped and its caller
    /// time out): a read whose message or answer was lost would otherwise
    /// hold its place for the rest of the term.
    mutating func forward(_ context: UInt64, limit: Int) {
        precondition(limit > 0, "a follower must be able to forward a read")
        while forwarded.count >= limit, forwardedHead < forwardedOrder.count {
            forwarded.remove(forwardedOrder[forwardedHead])
            forwardedHead += 1
        }
        forwarded.insert(context)
        forwardedOrder.append(context)
        // Answered and forgotten contexts linger in the order until more
        // than half of it is theirs: then it is rebuilt, in amortized O(1).
        if forwardedOrder.count > 2 * forwarded.count + Self.forwardedSlack {
            forwardedOrder = forwardedOrder[forwardedHead...].filter { forwarded.contains($0) }
            forwardedHead = 0
        }
    }

    /// Whether `context` was forwarded and still awaits its answer; forgets it.
    mutating func takeForwarded(_ context: UInt64) -> Bool {
        forwarded.remove(context) != nil
    }

    mutating func startRound(at tick: UInt64) -> UInt64 {
        round += 1
        for read in unsent { waiting.append((round, read)) }
        unsent.removeAll()
        sentTicks.append((round, tick))
        if sentTicks.count > Self.sentTicksMax { sentTicks.removeFirst(sentTicks.count - Self.sentTicksMax) }
        return round
    }

    /// Release every read attached to a round through `confirmed`.
    mutating func confirm(through confirmed: UInt64) -> [Read] {
        var released: [Read] = []
        while let first = waiting.first, first.round <= confirmed {
            released.append(first.read)
            waiting.removeFirst()
        }
        return released
    }

    func sentTick(of round: UInt64) -> UInt64? {
        sentTicks.first { $0.round == round }?.tick
    }
}
