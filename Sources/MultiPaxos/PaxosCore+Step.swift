import Consensus

extension PaxosCore {
    /// Rounds at or above this are refused from peers.
    static let roundMax = Term(UInt64.max >> 1)
    /// Slots at or above this are refused from peers: none is ever opened.
    static let slotMax = LogIndex(UInt64.max >> 1)

    public mutating func step(_ m: Message) {
        // Only members are heard (the peer listener proves who sends
        // what): a stranger's prepare would otherwise take a promise.
        guard m.to == id, m.from != id, membership.allMembers.contains(m.from) else { return }
        // Rounds grow by one per election: one near the top of the range
        // is no real member's, and would overflow the next round.
        guard m.term < Self.roundMax else { return }
        highestRoundSeen = max(highestRoundSeen, m.term)
        switch m.kind {
        case .prepare(let firstSlot, let handoverRound):
            handlePrepare(m, firstSlot: firstSlot, handoverRound: handoverRound)
        case .promise(let firstSlot, let accepted, let more, _):
            handlePromise(m, firstSlot: firstSlot, accepted: accepted, more: more)
        case .accept(let entries, let commit):
            handleAccept(m, entries: entries, commit: commit)
        case .accepted(let first, let last, let through, let commit):
            handleAccepted(m, first: first, last: last, through: through, commit: commit)
        case .nack:
            // An acceptor promised a higher round: this member's round is over.
            if m.term > promised.round && role != .follower {
                becomeFollower(leader: nil)
                resetElectionTimer()
            }
        case .heartbeat(let commit, let round):
            handleHeartbeat(m, commit: commit, round: round)
        case .heartbeatResponse(let round):
            handleHeartbeatResponse(m, round: round)
        case .snapshot(let metadata):
            handleSnapshot(m, metadata: metadata)
        case .timeoutNow:
            if role == .follower, m.from == leader, m.term == promised.round { campaign(handoverOf: promised.round) }
        case .readIndex(let context):
            guard role == .leader, m.term == promised.round, peers[m.from] != nil,
                reads.count < settings.pendingReadsMax
            else { return }
            acceptRead(context, from: m.from, mayUseLease: false)
        case .readIndexResponse(let context, let index):
            guard role == .follower, m.from == leader, m.term == promised.round, reads.takeForwarded(context) else { return }
            readStates.append(ReadState(context: context, index: index))
        case .preVote, .preVoteResponse, .vote, .voteResponse, .append, .appendResponse:
            return  // Raft's messages: nothing a Paxos member answers.
        }
    }
}
