import Consensus

extension RaftCore {
    @discardableResult
    public mutating func propose(_ commands: [[UInt8]]) throws(ProposeError) -> LogIndex {
        try checkCanPropose()
        guard !commands.isEmpty else { throw .emptyBatch }
        guard commands.count <= settings.proposalBatchMax else {
            throw .batchTooLarge(entries: commands.count, limit: settings.proposalBatchMax)
        }
        var bytes = 0
        for command in commands {
            let size = command.count + Entry.overheadBytes
            if size > settings.entryBytesMax { throw .entryTooLarge(bytes: size, limit: settings.entryBytesMax) }
            bytes += size
        }
        let uncommitted = uncommittedBytes
        // An empty pipeline always takes one batch, so a large batch cannot wedge.
        if uncommitted > 0 && uncommitted + bytes > settings.uncommittedBytesMax {
            throw .overloaded(uncommittedBytes: uncommitted + bytes, limit: settings.uncommittedBytesMax)
        }
        let first = log.lastIndex + 1
        for command in commands {
            log.append(Entry(term: term, index: log.lastIndex + 1, payload: .command(command)))
        }
        uncommittedBytesCache = uncommitted + bytes
        broadcastAppend()
        return first
    }

    mutating func checkCanPropose() throws(ProposeError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        if let target = transferTarget { throw .transferInProgress(to: target) }
    }

    /// Bytes of entries past the commit index. Recomputed only when the
    /// cached value may be stale (after commit moves), so proposals stay O(batch).
    var uncommittedBytes: Int {
        mutating get {
            if let cached = uncommittedBytesCache { return cached }
            var bytes = 0
            var index = log.committed + 1
            while index <= log.lastIndex {
                bytes += log.entry(at: index)!.byteCount
                index = index + 1
            }
            uncommittedBytesCache = bytes
            return bytes
        }
    }

    mutating func broadcastAppend() {
        for peer in progress.keys.sorted() { sendAppend(to: peer) }
    }

    mutating func broadcastHeartbeat() {
        let round = reads.startRound(at: ticks)
        for peer in progress.keys.sorted() {
            let commit = min(progress[peer]!.match, log.committed)
            send(.heartbeat(commit: commit, round: round), to: peer)
        }
        confirmReads()
    }

    /// Send the follower what it lacks. False when nothing was sent.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, allowEmpty: Bool = true) -> Bool {
        guard var pr = progress[peer] else { return false }
        if pr.isPaused(window: settings.inflightMessagesMax) { return false }
        let prevIndex = pr.next - 1
        guard let prevTerm = log.term(at: prevIndex) else {
            // The follower needs entries we compacted: send the snapshot.
            pr.becomeSnapshot(log.snapshot.index)
            progress[peer] = pr
            send(.snapshot(log.snapshot), to: peer)
            return true
        }
        let entries = log.entries(from: pr.next, through: log.lastIndex, maxBytes: settings.appendBytesMax)
        if entries.isEmpty && !allowEmpty { return false }
        switch pr.state {
        case .replicate:
            if let last = entries.last {
                pr.next = last.index + 1
                pr.inflight.append(last.index)
            }
        case .probe:
            pr.probeSent = true
        case .snapshot:
            preconditionFailure("paused progress sent an append")
        }
        progress[peer] = pr
        send(.append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: log.committed), to: peer)
        return true
    }

    mutating func handleAppendResponse(from peer: NodeID, reject: Bool, index: LogIndex, hintIndex: LogIndex, hintTerm: Term) {
        guard var pr = progress[peer] else { return }
        pr.recentActive = true
        if reject {
            let (matchHint, _) = log.lastIndex(atOrBelow: hintIndex, withTermAtMost: hintTerm)
            if pr.stepBack(rejected: index, matchHint: matchHint) {
                if pr.state == .replicate { pr.becomeProbe() }
                progress[peer] = pr
                sendAppend(to: peer)
            } else {
                progress[peer] = pr
            }
            return
        }
        let wasPaused = pr.isPaused(window: settings.inflightMessagesMax)
        guard pr.acknowledge(index) else {
            progress[peer] = pr
            if wasPaused && !pr.isPaused(window: settings.inflightMessagesMax) { sendAppend(to: peer, allowEmpty: false) }
            return
        }
        switch pr.state {
        case .probe:
            pr.becomeReplicate()
        case .snapshot(let pending) where pr.match >= pending:
            pr.becomeProbe()
            pr.becomeReplicate()
        default:
            break
        }
        progress[peer] = pr
        if maybeCommit() {
            broadcastAppend()
        }
        // Keep the pipe full while there is something to send and room in the window.
        var sent = 0
        while sent < settings.inflightMessagesMax && sendAppend(to: peer, allowEmpty: false) { sent += 1 }
        if transferTarget == peer && progress[peer]!.match == log.lastIndex {
            send(.timeoutNow, to: peer)
        }
    }

    mutating func handleHeartbeatResponse(from peer: NodeID, round: UInt64) {
        guard var pr = progress[peer] else { return }
        pr.recentActive = true
        pr.probeSent = false
        // A full window whose answers were lost would stall forever; free a slot.
        if pr.state == .replicate && pr.inflight.count >= settings.inflightMessagesMax { pr.inflight.removeFirst() }
        progress[peer] = pr
        if pr.match < log.lastIndex { sendAppend(to: peer) }
        if membership.isVoter(peer) && round > (reads.acks[peer] ?? 0) {
            reads.acks[peer] = round
            confirmReads()
        }
    }

    /// Advance the commit index to what a quorum holds. Only an entry of the
    /// current term is committed by counting: an older entry on a majority
    /// can still be overwritten by a later leader (Raft §5.4.2, Figure 8).
    @discardableResult
    mutating func maybeCommit() -> Bool {
        precondition(role == .leader, "only a leader counts replicas")
        let quorum = membership.quorumIndex { peer in
            peer == id ? log.stableIndex : progress[peer]?.match ?? .zero
        }
        guard quorum > log.committed else { return false }
        guard log.term(at: quorum) == term || settings.injectedBug == .commitOldTerm else { return false }
        let wasCommittedInTerm = committedInCurrentTerm
        commitAndApplyConfig(to: quorum)
        if !wasCommittedInTerm && committedInCurrentTerm { releaseReadsAwaitingCommit() }
        // A leader elected mid-change must finish it: leave joint consensus
        // once everything before its term has committed.
        maybeLeaveJoint()
        return true
    }

    var committedInCurrentTerm: Bool { log.term(at: log.committed) == term }

    mutating func commitAndApplyConfig(to index: LogIndex) {
        guard index > log.committed else { return }
        log.commit(to: index)
        uncommittedBytesCache = nil
        applyConfigChanges()
    }
}
