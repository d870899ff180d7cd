import Consensus

extension RaftCore {
    enum CampaignKind { case preVote, election, transfer }

    /// Start an election now. A leader ignores this: it already leads. So
    /// does a member inside a leader's lease in lease-read mode: deposing
    /// that leader early would let it serve stale reads.
    public mutating func campaign() {
        guard role != .leader else { return }
        if settings.readMode == .leaseBased && inLeaderLease { return }
        campaign(settings.preVote ? .preVote : .election)
    }

    mutating func campaign(_ kind: CampaignKind) {
        let electorate = latestMembership
        guard electorate.isVoter(id) else { return }
        let campaignTerm: Term
        switch kind {
        case .preVote:
            role = .preCandidate
            leader = nil
            // Reads forwarded to the leader just left are not taken back.
            reads = ReadQueue()
            campaignTerm = term.next
        case .election, .transfer:
            becomeCandidate()
            campaignTerm = term
        }
        votes = [id: true]
        campaignMembership = electorate
        resetElectionTimer()
        if finishCampaignIfDecided() { return }
        for peer in electorate.allVoters.sorted() where peer != id {
            switch kind {
            case .preVote:
                send(.preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm), to: peer, term: campaignTerm)
            case .election, .transfer:
                send(.vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm, transfer: kind == .transfer), to: peer)
            }
        }
    }

    /// Acts on the vote count; true when the campaign ended.
    mutating func finishCampaignIfDecided() -> Bool {
        switch campaignMembership.tally({ votes[$0] }) {
        case .won:
            if role == .preCandidate { campaign(.election) } else { becomeLeader() }
            return true
        case .lost:
            becomeFollower(term: term, leader: nil)
            return true
        case .pending:
            return false
        }
    }

    mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID?) {
        precondition(newTerm >= term, "term regression \(term) -> \(newTerm)")
        if newTerm > term {
            term = newTerm
            vote = nil
        }
        role = .follower
        leader = newLeader
        votes = [:]
        progress = [:]
        transferTarget = nil
        reads = ReadQueue()
        resetElectionTimer()
    }

    mutating func becomeCandidate() {
        precondition(role != .leader, "a leader does not campaign")
        term = term.next
        vote = id
        role = .candidate
        leader = nil
        reads = ReadQueue()
    }

    mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate becomes leader")
        role = .leader
        leader = id
        votes = [:]
        transferTarget = nil
        reads = ReadQueue()
        leaseExpiresTick = 0
        leaseForfeited = false
        heartbeatElapsed = 0
        electionElapsed = 0
        progress = [:]
        uncommittedBytesCache = nil
        syncProgressWithMembership()
        // Block membership changes until everything before this term is committed.
        pendingConfigIndex = log.lastIndex
        log.append(Entry(term: term, index: log.lastIndex + 1, payload: .noop))
        broadcastAppend()
        maybeCommit()
    }

    /// True when this member should ignore a campaign because it heard from
    /// a leader less than an election timeout ago (leader stickiness).
    var inLeaderLease: Bool {
        settings.checkQuorum && (leader != nil || restartGuard) && electionElapsed < settings.electionTicks
    }

    mutating func handleVoteRequest(_ m: Message, lastIndex: LogIndex, lastTerm: Term, isPreVote: Bool) {
        let canVote =
            vote == m.from
            || (vote == nil && leader == nil)
            || (isPreVote && m.term > term)
        // Injected bug: grant a second vote in the same term, keeping the first on record.
        let doubleVote = !canVote && !isPreVote && settings.injectedBug == .doubleVote
        if (canVote || doubleVote) && log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm) {
            // A granted pre-vote answers in the future term it was asked about.
            if isPreVote {
                send(.preVoteResponse(granted: true), to: m.from, term: m.term)
            } else {
                if !doubleVote {
                    vote = m.from
                    resetElectionTimer()
                }
                send(.voteResponse(granted: true), to: m.from)
            }
        } else {
            send(isPreVote ? .preVoteResponse(granted: false) : .voteResponse(granted: false), to: m.from)
        }
    }

    public mutating func tick() {
        ticks += 1
        if restartGuard && electionElapsed + 1 >= settings.electionTicks { restartGuard = false }
        if role == .leader {
            tickLeader()
            return
        }
        electionElapsed += 1
        if electionElapsed >= randomizedElectionTimeout && isPromotable {
            campaign()
        }
    }

    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        for peer in progress.keys {
            progress[peer]!.ticksInState += 1
            if case .snapshot = progress[peer]!.state, progress[peer]!.ticksInState > 2 * settings.electionTicks {
                // The snapshot (or its answer) was probably lost: probe again.
                progress[peer]!.becomeProbe()
            }
        }
        if electionElapsed >= settings.electionTicks {
            electionElapsed = 0
            if settings.checkQuorum {
                let active = membership.tally { peer in peer == id || progress[peer]?.recentActive == true ? true : nil }
                if active != .won {
                    becomeFollower(term: term, leader: nil)
                    return
                }
                for peer in progress.keys { progress[peer]!.recentActive = false }
            }
            transferTarget = nil
        }
        if heartbeatElapsed >= settings.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    public mutating func transferLeadership(to target: NodeID) throws(TransferError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard target != id else { throw .alreadyLeader }
        guard membership.voters.contains(target), progress[target] != nil else { throw .notVoter(target) }
        transferTarget = target
        leaseForfeited = true
        // The transfer has one election timeout to finish.
        electionElapsed = 0
        if progress[target]!.match == log.lastIndex {
            send(.timeoutNow, to: target)
        } else {
            sendAppend(to: target)
        }
    }
}
