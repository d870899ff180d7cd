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
        if role == .candidate { keepPromisersWaiting() }
        if electionElapsed >= randomizedElectionTimeout {
            if isVoterSomewhere {
                probe()
            } else {
                resetElectionTimer()
            }
        }
    }

    /// Before a round of its own, ask the voters whether they would promise
    /// it (Raft's pre-vote, carried by the same messages): a member that
    /// knows fewer slots chosen than a quorum, or one cut off from a
    /// leader the others still hear, then never takes promises away from a
    /// candidate that can win (a member removed from a configuration it has
    /// not learned of yet did exactly that, and no round ever finished).
    mutating func probe() {
        becomeFollower(leader: nil)
        role = .preCandidate
        probeRound = max(promised.round, highestRoundSeen).next
        probeGrants = [id]
        resetElectionTimer()
        if Self.quorumOfEach(activeConfigurations, { probeGrants.contains($0) }) {
            campaign(handoverOf: .zero)
            return
        }
        let voters = activeConfigurations.reduce(Set<NodeID>()) { $0.union($1.allVoters) }
        for peer in voters.sorted() where peer != id {
            messagesNow.append(Message(from: id, to: peer, term: probeRound, kind: .preVote(lastIndex: log.committed, lastTerm: .zero)))
        }
    }

    /// Would this member promise a round `m.term` to `m.from`, which knows
    /// slots through `commit` chosen? Nothing changes here either way.
    mutating func handleProbe(_ m: Message, commit: LogIndex) {
        let granted = promised.admits(round: m.term, from: m.from) && !isSticky && commit >= log.committed
        // A refusal names this member's round when it is not below the
        // probe's, so the prober's next probe goes above it.
        let term = granted ? m.term : max(m.term, promised.round)
        messagesNow.append(Message(from: id, to: m.from, term: term, kind: .preVoteResponse(granted: granted)))
    }

    mutating func handleProbeAnswer(_ m: Message, granted: Bool) {
        guard role == .preCandidate else { return }
        if !granted {
            highestRoundSeen = max(highestRoundSeen, m.term)
            return
        }
        guard m.term == probeRound else { return }
        probeGrants.insert(m.from)
        if Self.quorumOfEach(activeConfigurations, { probeGrants.contains($0) }) { campaign(handoverOf: .zero) }
    }

    public mutating func campaign() { campaign(handoverOf: .zero) }

    /// Prepare a round above every round heard of: phase 1 for every slot
    /// past this member's commit index. `handoverRound`: the round of the
    /// leader that asked this member to take over (zero for none).
    mutating func campaign(handoverOf handoverRound: Term) {
        guard isVoterSomewhere else { return }
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
        askForPromises(handoverOf: handoverRound)
    }

    /// A candidate reading long logs a page per round trip may need more
    /// than an election timeout; promisers whose answer is complete hear
    /// nothing meanwhile and would start rounds of their own, and a lost
    /// message of a page would stall the answer. Each heartbeat
    /// interval they get a prepare for slots past any log (answered with an
    /// empty page the candidate ignores), which restarts their timers.
    /// Only while pages flow: a candidate waiting on members that do not
    /// answer must let the others time out and try rounds of their own.
    mutating func keepPromisersWaiting() {
        heartbeatElapsed += 1
        guard heartbeatElapsed >= settings.heartbeatTicks, var recovery, !recovery.paging.isEmpty else { return }
        heartbeatElapsed = 0
        for peer in recovery.complete.sorted() where peer != id {
            send(.prepare(firstSlot: Self.slotMax - 1, handoverRound: .zero), to: peer)
        }
        // Promisers still paging: ask again from where their answer stands,
        // in case a message of their page was lost.
        for (peer, next) in recovery.paging.sorted(by: { $0.key < $1.key }) {
            recovery.pageRead[peer] = 0
            recovery.heldPages[peer] = nil
            send(.prepare(firstSlot: next, handoverRound: .zero), to: peer)
        }
        self.recovery = recovery
    }

    /// Whether this member may prepare a round: it knows the configuration
    /// of its first open slot from chosen slots (a member that joined knows
    /// none until it learns a commit or a snapshot), and some active
    /// configuration counts it as a voter.
    var isVoterSomewhere: Bool {
        let active = activeConfigurations
        return !active[0].voters.isEmpty && active.contains { $0.isVoter(id) }
    }

    /// Send the round's prepare to every voter of a configuration the
    /// promises must cover that was not asked yet: recovered configuration
    /// entries may name voters the candidate's own configuration does not.
    mutating func askForPromises(handoverOf handoverRound: Term) {
        guard var recovery else { return }
        let voters = requiredConfigurations(recovery).reduce(Set<NodeID>()) { $0.union($1.allVoters) }
        for peer in voters.subtracting(recovery.asked).sorted() where peer != id {
            send(.prepare(firstSlot: recovery.firstSlot, handoverRound: handoverRound), to: peer)
        }
        recovery.asked.formUnion(voters)
        self.recovery = recovery
    }

    func quorumComplete(_ recovery: Recovery) -> Bool {
        Self.quorumOfEach(requiredConfigurations(recovery)) { recovery.complete.contains($0) }
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
            // A proposer that knows fewer slots chosen than this member
            // would read them all a page at a time: leave the round to one
            // that knows as much (as a Raft voter refuses a shorter log).
            // Safety does not need this; liveness does: the voter that
            // knows most is refused by nobody. A handover is let through.
            if firstSlot <= log.committed && !handover { return }
            becomeFollower(leader: nil)
            promised = ProposalNumber(round: m.term, proposer: m.from)
        }
        // A candidate still paging through long logs is at work: its round
        // is not abandoned while pages flow (the candidate's own timer
        // restarts with each page it reads, `handlePromise`).
        resetElectionTimer()
        guard firstSlot > log.snapshot.index else { return }
        // A page: at most `promiseEntriesMax` values, answered at once in
        // messages of at most `acceptBytesMax` bytes (at least one value),
        // so every message fits a peer frame and a page costs one round trip.
        var messages: [[Entry]] = [[]]
        var bytes = 0
        var count = 0
        var slot = firstSlot
        while slot <= log.lastIndex && count < settings.promiseEntriesMax {
            let entry = log.entry(at: slot)!
            if !SlotLog.isVacant(entry) {
                if !messages[messages.count - 1].isEmpty && bytes + entry.byteCount > settings.acceptBytesMax {
                    messages.append([])
                    bytes = 0
                }
                bytes += entry.byteCount
                messages[messages.count - 1].append(entry)
                count += 1
            }
            slot = slot + 1
        }
        let more = slot <= log.lastIndex
        var first = firstSlot
        for (i, accepted) in messages.enumerated() {
            let last = i == messages.count - 1
            send(.promise(firstSlot: first, accepted: accepted, more: last ? more : true, commit: log.committed), to: m.from)
            if let tail = accepted.last { first = tail.index + 1 }
        }
    }

    mutating func handlePromise(_ m: Message, firstSlot: LogIndex, accepted: [Entry], more: Bool) {
        guard role == .candidate, m.term == promised.round, var recovery else { return }
        guard !recovery.complete.contains(m.from) else { return }
        // A promise describes accepts in earlier rounds, in slot order: anything else is not one.
        var previous = firstSlot - 1
        for entry in accepted {
            guard entry.index > previous, (entry.index < Self.slotMax), entry.term > .zero, entry.term < promised.round else { return }
            previous = entry.index
        }
        if more && accepted.isEmpty { return }
        let cursor = recovery.paging[m.from] ?? recovery.firstSlot
        if firstSlot > cursor {
            // A later message of the page overtook an earlier one: keep it
            // until its turn, at most a page of values per promiser.
            var held = recovery.heldPages[m.from] ?? [:]
            let heldValues = held.values.reduce(0) { $0 + $1.accepted.count }
            if heldValues + accepted.count <= settings.promiseEntriesMax {
                held[firstSlot] = (accepted, more)
                recovery.heldPages[m.from] = held
                self.recovery = recovery
            }
            return
        }
        guard firstSlot == cursor else { return }
        // Phase 1 is progressing: long logs read a page per round trip may
        // take longer than one election timeout.
        electionElapsed = 0
        var message: (accepted: [Entry], more: Bool)? = (accepted, more)
        while let (accepted, more) = message {
            for entry in accepted where entry.index > log.committed { recovery.merge(entry) }
            if recovery.lastSlot > log.committed + UInt64(settings.recoverySlotsMax) {
                // Too far behind to recover here: give the round up.
                becomeFollower(leader: nil)
                return
            }
            message = nil
            if more {
                let next = accepted.last!.index + 1
                recovery.paging[m.from] = next
                message = recovery.heldPages[m.from]?.removeValue(forKey: next)
                // A page arrives as several messages: ask for the next page
                // once this one is read whole (a lost message is asked for
                // again at the next heartbeat interval, `keepPromisersWaiting`).
                let read = (recovery.pageRead[m.from] ?? 0) + accepted.count
                if read >= settings.promiseEntriesMax {
                    recovery.pageRead[m.from] = 0
                    recovery.heldPages[m.from] = nil
                    message = nil
                    send(.prepare(firstSlot: next, handoverRound: .zero), to: m.from)
                } else {
                    recovery.pageRead[m.from] = read
                }
            } else {
                recovery.paging[m.from] = nil
                recovery.pageRead[m.from] = nil
                recovery.heldPages[m.from] = nil
                recovery.complete.insert(m.from)
            }
        }
        self.recovery = recovery
        if quorumComplete(recovery) {
            becomeLeader()
        } else {
            askForPromises(handoverOf: .zero)
        }
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
        for peer in knownMembers where peer != id {
            peers[peer] = PeerProgress(through: .zero, lastSlotAtPreviousHeartbeat: log.lastIndex)
        }
        heartbeatElapsed = 0
        electionElapsed = 0
        leaseExpiresTick = 0
        leaseForfeited = false
        for peer in peers.keys.sorted() {
            sendAccepts(from: log.committed + 1, through: log.lastIndex, to: peer)
        }
        openSlotsUntilChangesTakeEffect()
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
