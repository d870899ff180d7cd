/// Who votes and who only listens. During joint consensus (Raft §6) both the
/// incoming `voters` and the `outgoingVoters` must each reach a majority for
/// any decision, so no two disjoint majorities can decide at once.
public struct Membership: Sendable, Equatable, CustomStringConvertible {
    /// The voters of the new (or only) configuration.
    public var voters: Set<NodeID>
    /// The voters of the old configuration while joint; empty otherwise.
    public var outgoingVoters: Set<NodeID>
    /// Members that receive the log but never vote and never count for quorum.
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID> = [], outgoingVoters: Set<NodeID> = [], learners: Set<NodeID> = []) {
        self.voters = voters
        self.outgoingVoters = outgoingVoters
        self.learners = learners
    }

    public static let empty = Membership()

    public var isJoint: Bool { !outgoingVoters.isEmpty }

    /// Every member a leader replicates to.
    public var allMembers: Set<NodeID> { voters.union(outgoingVoters).union(learners) }

    /// Members whose vote counts in some half of the configuration.
    public var allVoters: Set<NodeID> { voters.union(outgoingVoters) }

    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) || outgoingVoters.contains(id) }

    /// The outcome of counting votes (or acknowledgements) for this membership.
    public func tally(_ granted: (NodeID) -> Bool?) -> VoteResult {
        let incoming = Self.tally(voters, granted)
        if !isJoint { return incoming }
        let outgoing = Self.tally(outgoingVoters, granted)
        if incoming == .won && outgoing == .won { return .won }
        if incoming == .lost || outgoing == .lost { return .lost }
        return .pending
    }

    /// The highest index acknowledged by a quorum, given each member's
    /// acknowledged index. Joint: the smaller of the two halves' answers.
    public func quorumIndex(_ acked: (NodeID) -> LogIndex) -> LogIndex {
        let incoming = Self.quorumIndex(voters, acked)
        if !isJoint { return incoming }
        return min(incoming, Self.quorumIndex(outgoingVoters, acked))
    }

    static func tally(_ set: Set<NodeID>, _ granted: (NodeID) -> Bool?) -> VoteResult {
        if set.isEmpty { return .won }
        var yes = 0
        var no = 0
        for id in set {
            switch granted(id) {
            case true?: yes += 1
            case false?: no += 1
            case nil: break
            }
        }
        let majority = set.count / 2 + 1
        if yes >= majority { return .won }
        if no > set.count - majority { return .lost }
        return .pending
    }

    static func quorumIndex(_ set: Set<NodeID>, _ acked: (NodeID) -> LogIndex) -> LogIndex {
        // An empty half never blocks progress: it is only ever the outgoing
        // half, and only during bootstrap.
        if set.isEmpty { return LogIndex(UInt64.max) }
        var indexes = set.map(acked)
        indexes.sort(by: >)
        return indexes[set.count / 2]
    }

    public var description: String {
        func list(_ s: Set<NodeID>) -> String { s.sorted().map(\.description).joined(separator: ",") }
        var text = "voters=(\(list(voters)))"
        if isJoint { text += "&&(\(list(outgoingVoters)))" }
        if !learners.isEmpty { text += " learners=(\(list(learners)))" }
        return text
    }
}

/// The result of counting a quorum.
public enum VoteResult: Sendable, Equatable {
    case won, lost, pending
}
