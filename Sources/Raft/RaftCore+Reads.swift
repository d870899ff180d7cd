import Consensus

extension RaftCore {
    public mutating func readIndex(context: UInt64) throws(ReadIndexError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard reads.count < settings.pendingReadsMax else { throw .tooManyPendingReads(limit: settings.pendingReadsMax) }
        if settings.injectedBug == .readWithoutQuorum {
            // Injected bug: trust the local commit index without confirming leadership.
            readStates.append(ReadState(context: context, index: log.committed))
            return
        }
        guard committedInCurrentTerm else {
            reads.awaitingCommit.append(context)
            return
        }
        serveRead(context)
    }

    mutating func serveRead(_ context: UInt64) {
        let read = ReadState(context: context, index: log.committed)
        if membership.tally({ $0 == id ? true : nil }) == .won || leaseIsValid {
            // Alone in the group, or covered by a lease: no round needed.
            readStates.append(read)
        } else {
            reads.unsent.append(read)
        }
    }

    mutating func releaseReadsAwaitingCommit() {
        let contexts = reads.awaitingCommit
        reads.awaitingCommit.removeAll()
        for context in contexts { serveRead(context) }
    }

    /// Release the reads whose heartbeat round a quorum acknowledged.
    mutating func confirmReads() {
        let confirmed = membership.quorumIndex { peer in
            LogIndex(peer == id ? reads.round : reads.acks[peer] ?? 0)
        }
        readStates.append(contentsOf: reads.confirm(through: confirmed.rawValue))
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
