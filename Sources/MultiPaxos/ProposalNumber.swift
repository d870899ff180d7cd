import Consensus

/// A Paxos proposal number (the paper's "ballot"; the product's name took
/// that word): a round and the one proposer that owns it.
///
/// Classic Paxos orders pairs (round, proposer) lexicographically. Here an
/// acceptor promises a round to one proposer only, the way a Raft voter
/// votes once per term, so at most one proposer completes phase 1 in any
/// round, and the round alone names a proposal wherever a value records
/// the proposal it was accepted in (`Entry.term`). It lives on disk as the
/// hard state's `term` (round) and `vote` (proposer).
public struct ProposalNumber: Hashable, Sendable, CustomStringConvertible {
    public var round: Term
    /// Nil for a round learnt of but promised to no one (a restarted member's).
    public var proposer: NodeID?

    public init(round: Term, proposer: NodeID?) {
        self.round = round
        self.proposer = proposer
    }

    public static let zero = ProposalNumber(round: .zero, proposer: nil)

    /// Whether an acceptor that promised `self` may take part in
    /// `proposer`'s `round`: a higher round, or this very proposal (its
    /// next page of phase 1, its phase 2).
    public func admits(round: Term, from proposer: NodeID) -> Bool {
        round > self.round || (round == self.round && (self.proposer == nil || self.proposer == proposer))
    }

    public var description: String { "\(round).\(proposer.map(\.description) ?? "-")" }
}
