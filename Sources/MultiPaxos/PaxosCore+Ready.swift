import Consensus

extension PaxosCore {
    public var hasReady: Bool {
        !messagesNow.isEmpty || !messagesAfterPersist.isEmpty || !readStates.isEmpty
            || snapshotToInstall != nil || hardState != persistedHardState
            || log.unstableFrom != nil
            || min(log.committed, log.stableThrough) > log.appliedHandedOut
            || (role == .leader && !reads.unsent.isEmpty)
    }

    public mutating func ready() -> Ready {
        precondition(!readyOutstanding, "ready() called again before advance()")
        if role == .leader && !reads.unsent.isEmpty {
            // Every read that arrived since the last round rides on one new round.
            broadcastHeartbeat()
        }
        let current = hardState
        let entries = log.takeUnstable()
        var ready = Ready(
            hardState: current == persistedHardState ? nil : current,
            entries: entries,
            snapshot: snapshotToInstall,
            messagesNow: messagesNow,
            messagesAfterPersist: messagesAfterPersist,
            committed: log.nextCommitted(maxBytes: settings.applyBytesMax),
            readStates: readStates)
        ready.termOrVoteChanged = current.term != persistedHardState.term || current.vote != persistedHardState.vote
        writingThrough = entries.last?.index
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
        if let last = writingThrough { log.stabilized(through: last) }
        writingThrough = nil
        if let last = ready.committed.last, last.index > log.applied { log.applied = last.index }
        if role == .leader {
            // This leader's own acceptances count once durable.
            var slot = max(selfAckedThrough, log.committed) + 1
            while slot <= log.stableThrough {
                precondition(log.entry(at: slot)?.term == promised.round, "a leader's open slot \(slot) is not of its round")
                acks[slot, default: []].insert(id)
                slot = slot + 1
            }
            selfAckedThrough = max(selfAckedThrough, log.stableThrough)
            maybeCommit()
        }
    }
}
