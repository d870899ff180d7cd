import Consensus

extension RaftCore {
    public var hasReady: Bool {
        !messagesNow.isEmpty || !messagesAfterPersist.isEmpty || !readStates.isEmpty
            || snapshotToInstall != nil || hardState != persistedHardState
            || log.stableIndex < log.lastIndex
            || min(log.committed, log.stableIndex) > log.appliedHandedOut
            || (role == .leader && !reads.unsent.isEmpty)
    }

    public mutating func ready() -> Ready {
        precondition(!readyOutstanding, "ready() called again before advance()")
        if role == .leader && !reads.unsent.isEmpty {
            // Every read that arrived since the last round rides on one new round.
            broadcastHeartbeat()
        }
        let current = hardState
        var ready = Ready(
            hardState: current == persistedHardState ? nil : current,
            entries: log.unstableEntries,
            snapshot: snapshotToInstall,
            messagesNow: messagesNow,
            messagesAfterPersist: messagesAfterPersist,
            committed: log.nextCommitted(maxBytes: settings.applyBytesMax),
            readStates: readStates)
        ready.termOrVoteChanged = current.term != persistedHardState.term || current.vote != persistedHardState.vote
        messagesNow.removeAll(keepingCapacity: true)
        messagesAfterPersist.removeAll(keepingCapacity: true)
        readStates.removeAll(keepingCapacity: true)
        snapshotToInstall = nil
        if let last = ready.committed.last { log.appliedHandedOut = last.index }
        readyOutstanding = true
        return ready
    }

    public mutating func advance(_ ready: Ready) {
        precondition(readyOutstanding, "advance() without a ready()")
        readyOutstanding = false
        if let hardState = ready.hardState { persistedHardState = hardState }
        if let last = ready.entries.last, log.term(at: last.index) == last.term {
            // Entries truncated since ready() stay unstable and are written again.
            log.stableIndex = max(log.stableIndex, last.index)
        }
        if let last = ready.committed.last, last.index > log.applied {
            log.applied = last.index
        }
        if role == .leader && !ready.entries.isEmpty && maybeCommit() {
            broadcastAppend()
        }
    }
}
