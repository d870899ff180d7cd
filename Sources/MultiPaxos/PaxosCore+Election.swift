import Consensus

extension PaxosCore {
    public mutating func tick() {
        ticks += 1
        if role == .leader {
            tickLeader()
            return
        }
        electionElapsed += 1
        if electionElapsed >= settings.electionTicks { restartGuard = false }
        if electionElapsed >= randomizedElectionTimeout {
            if membership.isVoter(id) {
                campaign(handoverOf: .zero)
            } else {
                resetElectionTimer()
            }
        }
    }

    public mutating func campaign() { campaign(handoverOf: .zero) }

    /// Prepare a round above every round heard of: phase 1 for every slot
    /// past this member's commit index. `handoverRound`: the round of the
    /// leader that asked this member to take over (zero for none).
    mutating func campaign(handoverOf handoverRound: Term) {
        guard membership.isVoter(id) else { return }
        let round = max(promised.round, highestRoundSeen).next
        highestRoundSeen = round
        becomeFollower(leader: nil)
        promised = ProposalNumber(round: round, proposer: id)
        role = .candidate
        var recovery = Recovery(firstSlot: log.committed + 1, selfID: id)
        var slot = log.committed + 1
        while slot <= log.lastIndex {
            let entry = log.entry(at: slot)!
            if !SlotLog.isVacant(entry) { recovery.merge(entry) }
            slot = slot + 1
        }
        self.recovery = recovery
        resetElectionTimer()
        if quorumComplete(recovery) {
            becomeLeader()
            return
        }
        for peer in membership.allVoters.sorted() where peer != id {
            send(.prepare(firstSlot: recovery.firstSlot, handoverRound: handoverRound), to: peer)
        }
    }

    func quorumComplete(_ recovery: Recovery) -> Bool {
        membership.tally { recovery.complete.contains($0) ? true : nil } == .won
    }

    /// Whether this member refuses to promise a new round: it heard from
    /// its leader within an election timeout (or restarted within one), and
    /// that leader's lease may lean on it.
    var isSticky: Bool {
        restartGuard || (leader != nil && electionElapsed < settings.electionTicks) || role == .leader
    }

    mutating func handlePrepare(_ m: Message, firstSlot: LogIndex, handoverRound: Term) {
        guard promised.admits(round: m.term, from: m.from) else {
            send(.nack, to: m.from)
            return
        }
        if m.term > promised.round || promised.proposer != m.from {
            // A new round: stay with a leader heard from lately, unless that
            // very leader asked for the handover (it gave its lease up).
            let handover = handoverRound > .zero && handoverRound == promised.round
                && (role != .leader || m.from == transferTarget)
            if isSticky && !handover { return }
            // Slots this member compacted are chosen, and the proposer
            // lacks them: it cannot recover them here, so it may not lead.
            guard firstSlot > log.snapshot.index else { return }
            becomeFollower(leader: nil)
            promised = ProposalNumber(round: m.term, proposer: m.from)
            resetElectionTimer()
        }
        guard firstSlot > log.snapshot.index else { return }
        // A page: at most `promiseEntriesMax` values and `acceptBytesMax`
        // bytes (at least one value), so every page fits a peer frame.
        var accepted: [Entry] = []
        var bytes = 0
        var slot = firstSlot
        while slot <= log.lastIndex && accepted.count < settings.promiseEntriesMax {
            let entry = log.entry(at: slot)!
            if !SlotLog.isVacant(entry) {
                if !accepted.isEmpty && bytes + entry.byteCount > settings.acceptBytesMax { break }
                bytes += entry.byteCount
                accepted.append(entry)
            }
            slot = slot + 1
        }
        let more = slot <= log.lastIndex
        send(.promise(firstSlot: firstSlot, accepted: accepted, more: more, commit: log.committed), to: m.from)
    }

    mutating func handlePromise(_ m: Message, firstSlot: LogIndex, accepted: [Entry], more: Bool) {
        guard role == .candidate, m.term == promised.round, var recovery else { return }
        guard !recovery.complete.contains(m.from), firstSlot == (recovery.paging[m.from] ?? recovery.firstSlot) else { return }
        // A promise describes accepts in earlier rounds, in slot order: anything else is not one.
        var previous = firstSlot - 1
        for entry in accepted {
            guard entry.index > previous, (entry.index < Self.slotMax), entry.term > .zero, entry.term < promised.round else { return }
            previous = entry.index
        }
        if more && accepted.isEmpty { return }
        for entry in accepted where entry.index > log.committed { recovery.merge(entry) }
        if recovery.lastSlot > log.committed + UInt64(settings.recoverySlotsMax) {
            // Too far behind to recover here: give the round up.
            becomeFollower(leader: nil)
            return
        }
        if more {
            let next = accepted.last!.index + 1
            recovery.paging[m.from] = next
            send(.prepare(firstSlot: next, handoverRound: .zero), to: m.from)
        } else {
            recovery.paging[m.from] = nil
            recovery.complete.insert(m.from)
        }
        self.recovery = recovery
        if quorumComplete(recovery) { becomeLeader() }
    }

    /// Phase 1 is complete: propose, in this round, the highest-round value
    /// the quorum accepted in every open slot, and a no-op where it
    /// accepted none, so every value that may have been chosen is chosen
    /// again and no hole stays open.
    mutating func becomeLeader() {
        guard let recovery else { preconditionFailure("becomeLeader without phase 1") }
        self.recovery = nil
        role = .leader
        leader = id
        var slot = log.committed + 1
        while slot <= recovery.lastSlot {
            var payload = recovery.values[slot]?.payload ?? .noop
            if settings.injectedBug == .skipRecovery { payload = .noop }
            log.set(Entry(term: promised.round, index: slot, payload: payload))
            slot = slot + 1
        }
        recoveredThrough = log.lastIndex
        selfAckedThrough = log.committed
        for peer in membership.allMembers where peer != id {
            peers[peer] = PeerProgress(through: .zero, lastSlotAtPreviousHeartbeat: log.lastIndex)
        }
        heartbeatElapsed = 0
        electionElapsed = 0
        leaseExpiresTick = 0
        leaseForfeited = false
        for peer in peers.keys.sorted() {
            sendAccepts(from: log.committed + 1, through: log.lastIndex, to: peer)
        }
        broadcastHeartbeat()
    }

    /// Leave any round this member was preparing or leading.
    mutating func becomeFollower(leader: NodeID?) {
        role = .follower
        self.leader = leader
        recovery = nil
        peers = [:]
        acks = [:]
        reads = PaxosReads()
        transferTarget = nil
        recentlyHeard = []
        selfAckedThrough = .zero
    }

    /// A message from whoever claims to lead round `m.term`: join the round
    /// if it is this member's promise or above, else tell the sender its
    /// round is over. Returns whether the message may be acted on.
    mutating func admitLeader(_ m: Message) -> Bool {
        guard promised.admits(round: m.term, from: m.from) else {
            send(.nack, to: m.from)
            return false
        }
        if m.term > promised.round || promised.proposer != m.from || role != .follower || leader != m.from {
            // Only a proposer with a quorum of promises sends these, so
            // its round holds no other proposer's values: joining it is a promise.
            becomeFollower(leader: m.from)
            promised = ProposalNumber(round: m.term, proposer: m.from)
        }
        restartGuard = false
        resetElectionTimer()
        return true
    }

    public mutating func transferLeadership(to target: NodeID) throws(TransferError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard target != id else { throw .alreadyLeader }
        guard membership.isVoter(target) else { throw .notVoter(target) }
        transferTarget = target
        leaseForfeited = true
        electionElapsed = 0
        send(.timeoutNow, to: target)
    }
}
