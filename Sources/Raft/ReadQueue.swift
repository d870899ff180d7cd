import Consensus

/// A leader's linearizable reads on their way to confirmation.
///
/// Reads are batched: every read that arrives before the next heartbeat
/// round rides on it, and an acknowledgement of round r from a quorum
/// confirms every read attached to a round up to r (a later
/// acknowledgement proves leadership at a later moment).
struct ReadQueue: Sendable {
    /// Reads that arrived before the leader committed an entry of its own
    /// term: until then it does not know the commit index (Raft thesis §6.4).
    var awaitingCommit: [UInt64] = []
    /// Reads with an index, not yet attached to a round.
    var unsent: [ReadState] = []
    /// Reads attached to a round, oldest first.
    var waiting: [(round: UInt64, read: ReadState)] = []
    /// The last heartbeat round sent.
    var round: UInt64 = 0
    /// Highest round each follower acknowledged.
    var acks: [NodeID: UInt64] = [:]
    /// When recent rounds were sent, for leases; the oldest are dropped.
    var sentTicks: [(round: UInt64, tick: UInt64)] = []
    static let sentTicksMax = 64

    var count: Int { awaitingCommit.count + unsent.count + waiting.count }

    mutating func startRound(at tick: UInt64) -> UInt64 {
        round += 1
        for read in unsent { waiting.append((round, read)) }
        unsent.removeAll()
        sentTicks.append((round, tick))
        if sentTicks.count > Self.sentTicksMax { sentTicks.removeFirst(sentTicks.count - Self.sentTicksMax) }
        return round
    }

    /// Release every read attached to a round through `confirmed`.
    mutating func confirm(through confirmed: UInt64) -> [ReadState] {
        var released: [ReadState] = []
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
