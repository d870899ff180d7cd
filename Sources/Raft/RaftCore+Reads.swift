import Consensus

extension RaftCore {
    /// Ask for a read index, answered as a `ReadState` tagged `context`.
    /// `mayUseLease`: in `.leaseBased` read mode, whether this read may be
    /// confirmed by the leader's lease instead of a heartbeat round (a
    /// shell offers the lease per read; a read that does not ask for it is
    /// linearizable whatever the clocks do). A read a follower forwards is
    /// confirmed without the lease: the forward carries no such choice.
    ///
    /// On the leader, the read index is the commit index once a quorum
    /// confirmed this member still leads (a heartbeat round, or a valid
    /// lease). A follower forwards the read to its leader and takes the
    /// answer only in the term it asked in.
    ///
    /// When the leader and the asking follower are a quorum (any 3-member
    /// group), the leader answers at once, with no heartbeat round: the
    /// forwarded read is the follower's vote. The argument: a write
    /// acknowledged before the read began was committed before the leader
    /// fixed the index, by a leader of an earlier term or of this one (the
    /// index covers it: this leader has committed an entry of its own term,
    /// Raft thesis §6.4), or by a leader of a later term. A later leader
    /// needs votes from a quorum, which holds this leader or the follower;
    /// but the follower was still in this term when it sent the read, after
    /// the read began, and the leader still in it when it fixed the index,
    /// so neither had voted in a later term before the read began, and no
    /// such leader existed then. (Taking the answer only in the term it was
    /// asked in is not needed for that, and keeps answers from crossing
    /// terms.) Where the two are not a quorum (5 members), the read rides on
    /// the leader's next heartbeat round, as the leader's own reads do.
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
            throw .notLeader(leaderHint: leader)
        }
    }

    /// A read asked here (`from` is this member) or forwarded by a follower.
    mutating func acceptRead(_ context: UInt64, from: NodeID, mayUseLease: Bool) {
        if settings.injectedBug == .readWithoutQuorum || (from != id && settings.injectedBug == .forwardedReadWithoutQuorum) {
            // Injected bug: trust the local commit index without confirming leadership.
            answer(ReadState(context: context, index: log.committed), to: from)
            return
        }
        guard committedInCurrentTerm else {
            reads.awaitingCommit.append((context, from, mayUseLease))
            return
        }
        serveRead(context, from: from, mayUseLease: mayUseLease)
    }

    mutating func serveRead(_ context: UInt64, from: NodeID, mayUseLease: Bool) {
        let read = ReadState(context: context, index: log.committed)
        // Alone in the group, or with the asking follower a quorum (see
        // `readIndex(context:mayUseLease:)`), or covered by a lease it may use: no round needed.
        let quorumWithAsker = membership.tally { $0 == id || $0 == from ? true : nil } == .won
        if quorumWithAsker || (mayUseLease && leaseIsValid) {
            answer(read, to: from)
        } else {
            reads.unsent.append(ReadQueue.Read(state: read, from: from))
        }
    }

    /// A confirmed read index to whoever asked: this member's own reads
    /// leave in the Ready, a follower's as a message.
    mutating func answer(_ read: ReadState, to asker: NodeID) {
        if asker == id {
            readStates.append(read)
        } else {
            send(.readIndexResponse(context: read.context, index: read.index), to: asker)
        }
    }

    /// Leader: a follower forwarded a read. Too many pending reads, and it
    /// is dropped: the follower's caller times out, as when a message is lost.
    mutating func handleForwardedRead(_ context: UInt64, from follower: NodeID) {
        guard reads.count < settings.pendingReadsMax else { return }
        acceptRead(context, from: follower, mayUseLease: false)
    }

    /// Follower: the leader answered a read this member forwarded in this
    /// term (the queue forgets forwarded reads whenever the term changes).
    mutating func handleReadIndexResponse(_ context: UInt64, index: LogIndex, from: NodeID) {
        guard from == leader, reads.takeForwarded(context) else { return }
        readStates.append(ReadState(context: context, index: index))
    }

    mutating func releaseReadsAwaitingCommit() {
        let pending = reads.awaitingCommit
        reads.awaitingCommit.removeAll()
        for read in pending { serveRead(read.context, from: read.from, mayUseLease: read.mayUseLease) }
    }

    /// Release the reads whose heartbeat round a quorum acknowledged.
    mutating func confirmReads() {
        let confirmed = membership.quorumIndex { peer in
            LogIndex(peer == id ? reads.round : reads.acks[peer] ?? 0)
        }
        for read in reads.confirm(through: confirmed.rawValue) { answer(read.state, to: read.from) }
        if let sent = reads.sentTick(of: confirmed.rawValue) { leaseExpiresTick = max(leaseExpiresTick, sent + UInt64(settings.leaseTicks)) }
    }

    /// A lease holds until an election timeout, shortened by the clock-drift
    /// bound, after the last heartbeat round a quorum acknowledged was sent:
    /// each acknowledging follower rejects campaigns for an election timeout
    /// after hearing it (leader stickiness), so no other leader can exist yet.
    var leaseIsValid: Bool {
        settings.readMode == .leaseBased && !leaseForfeited && committedInCurrentTerm && ticks < leaseExpiresTick
    }
}
