import Consensus

extension PaxosCore {
    /// Rounds at or above this are refused from peers.
    static let roundMax = Term(UInt64.max >> 1)
    /// Slots at or above this are refused from peers: none is ever opened.
    static let slotMax = LogIndex(UInt64.max >> 1)

    /// Whom this member hears. A leader's messages (accepts, heartbeats,
    /// snapshots, read answers) from anyone, as a Raft follower hears
    /// appends: a leader whose configuration this member has not learned
    /// yet is how it learns it, and a stale one's round is refused anyway.
    /// Prepares and answers only from members of a configuration it knows
    /// (promises from those it asked), so no stranger takes a promise; a member that knows no chosen
    /// configuration yet (it joined with nothing) hears every member.
    func hears(_ m: Message) -> Bool {
        switch m.kind {
        case .accept, .heartbeat, .snapshot, .readIndexResponse, .timeoutNow:
            return true
        case .promise:
            // A candidate asks the voters of configurations it recovers too.
            return recovery?.asked.contains(m.from) == true
        default:
            return log.committed == .zero || knownMembers.contains(m.from)
        }
    }

    public mutating func step(_ m: Message) {
        // Only members are heard (the peer listener proves who sends
        // what): a stranger's prepare would otherwise take a promise. A
        // member that joined with nothing knows no chosen configuration
        // yet (what it accepted may have lost): it hears every member.
        guard m.to == id, m.from != id else { return }
        guard hears(m) else { return }
        // Rounds grow by one per election: one near the top of the range
        // is no real member's, and would overflow the next round.
        guard m.term < Self.roundMax else { return }
        switch m.kind {
        case .preVote, .preVoteResponse: break  // a probe's round is not in use yet
        default: highestRoundSeen = max(highestRoundSeen, m.term)
        }
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
            // An acceptor promised a higher round, or this very round to
            // another proposer (two members that picked the same round
            // number): this member's round is over either way.
            if m.term >= promised.round && role != .follower {
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
        case .preVote(let commit, _):
            handleProbe(m, commit: commit)  // a probe before a round (`probe()`)
        case .preVoteResponse(let granted):
            handleProbeAnswer(m, granted: granted)
        case .vote, .voteResponse, .append, .appendResponse:
            return  // Raft's messages: nothing a Paxos member answers.
        }
    }
}
