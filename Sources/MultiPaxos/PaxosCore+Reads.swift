import Consensus

extension PaxosCore {
    /// Ask for a read index, answered as a `ReadState` tagged `context`.
    ///
    /// On the leader the index is its commit index, and at least the last
    /// slot it recovered in phase 1: a write acknowledged before the read
    /// began was chosen either by an earlier leader (at or below the
    /// recovered slots: a chosen value was accepted by a quorum, which
    /// meets the phase-1 quorum) or by this one (at or below its commit
    /// index). It is served once a heartbeat round sent after the read
    /// arrived is acknowledged by a quorum (no later round can have
    /// completed phase 1 before then), or at once under a valid lease when
    /// `mayUseLease`. A follower forwards the read to its leader and takes
    /// the answer only in the round it asked in.
    public mutating func readIndex(context: UInt64, mayUseLease: Bool) throws(ReadIndexError) {
        switch role {
        case .leader:
            guard reads.count < settings.pendingReadsMax else { throw .tooManyPendingReads(limit: settings.pendingReadsMax) }
            acceptRead(context, from: id, mayUseLease: mayUseLease)
        case .follower:
            guard let leader else { throw .notLeader(leaderHint: nil) }
            reads.forward(context, limit: settings.pendingReadsMax)
            send(.readIndex(context: context), to: leader)
        case .candidate, .preCandidate:
            throw .notLeader(leaderHint: nil)
        }
    }

    mutating func acceptRead(_ context: UInt64, from: NodeID, mayUseLease: Bool) {
        if settings.injectedBug == .readWithoutConfirmation {
            // Injected bug: trust the local commit index, confirming nothing.
            answer(ReadState(context: context, index: log.committed), to: from)
            return
        }
        let read = ReadState(context: context, index: max(log.committed, recoveredThrough))
        let alone = Self.quorumOfEach(activeConfigurations) { $0 == id }
        if alone || (mayUseLease && leaseIsValid) {
            answer(read, to: from)
        } else {
            reads.unsent.append(PaxosReads.Read(state: read, from: from))
        }
    }

    var leaseIsValid: Bool {
        settings.readMode == .leaseBased && !leaseForfeited && ticks < leaseExpiresTick
    }

    mutating func answer(_ read: ReadState, to asker: NodeID) {
        if asker == id {
            readStates.append(read)
        } else {
            send(.readIndexResponse(context: read.context, index: read.index), to: asker)
        }
    }

    mutating func handleHeartbeatResponse(_ m: Message, round: UInt64) {
        guard role == .leader, m.term == promised.round, peers[m.from] != nil, round <= reads.round else { return }
        recentlyHeard.insert(m.from)
        reads.acks[m.from] = max(reads.acks[m.from] ?? 0, round)
        confirmReads()
    }

    /// Serve every read whose round a quorum acknowledged, and extend the
    /// lease from the time that round was sent.
    mutating func confirmReads() {
        let confirmed = activeConfigurations.map { configuration in
            configuration.quorumIndex { LogIndex($0 == id ? reads.round : reads.acks[$0] ?? 0) }.rawValue
        }.min()!
        guard confirmed > 0 else { return }
        if !leaseForfeited, let sent = reads.sentTicks.last(where: { $0.round <= confirmed }) {
            leaseExpiresTick = max(leaseExpiresTick, sent.tick + UInt64(settings.leaseTicks))
        }
        for read in reads.release(through: confirmed) { answer(read.state, to: read.from) }
    }
}
