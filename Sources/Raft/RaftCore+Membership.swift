import Consensus

extension RaftCore {
    @discardableResult
    public mutating func proposeConfigChange(_ change: ConfigChange) throws(ProposeError) -> LogIndex {
        try checkCanPropose()
        if pendingConfigIndex > log.committed || membership.isJoint {
            throw .configChangePending(index: pendingConfigIndex)
        }
        guard case .change = change.kind else {
            throw .invalidConfigChange(.notJoint)
        }
        if case .failure(let error) = change.applied(to: membership) { throw .invalidConfigChange(error) }
        let index = log.lastIndex + 1
        log.append(Entry(term: term, index: index, payload: .configChange(change)))
        uncommittedBytesCache = nil
        pendingConfigIndex = index
        broadcastAppend()
        return index
    }

    /// Let membership changes in newly committed entries take effect.
    /// A change takes effect for commit decisions when committed, on every
    /// member alike; elections already use the latest configuration in the
    /// log (`latestMembership`).
    mutating func applyConfigChanges() {
        var changed = false
        while configAppliedThrough < log.committed {
            configAppliedThrough = configAppliedThrough + 1
            guard case .configChange(let change) = log.entry(at: configAppliedThrough)?.payload else { continue }
            // Validated when proposed against this same membership (one change at
            // a time); an invalid change is skipped identically on every member.
            if case .success(let next) = change.applied(to: membership) {
                membership = next
                appliedConfigs.append((configAppliedThrough, next))
                changed = true
            }
        }
        guard changed, role == .leader else { return }
        syncProgressWithMembership()
        if !membership.isVoter(id) {
            // Removed: pass on the commit index, then hand over to the most
            // caught-up remaining voter at once, so the new configuration
            // need not wait an election timeout for a leader (nor stall if
            // the old voters are shut down right after the change).
            broadcastAppend()
            let successor = membership.voters.sorted().max { (progress[$0]?.match ?? .zero) < (progress[$1]?.match ?? .zero) }
            if let successor, progress[successor] != nil { send(.timeoutNow, to: successor) }
            becomeFollower(term: term, leader: nil)
            return
        }
        if let target = transferTarget, !membership.voters.contains(target) { transferTarget = nil }
        maybeLeaveJoint()
    }

    /// Joint consensus is left automatically once the joint entry commits.
    mutating func maybeLeaveJoint() {
        guard role == .leader, membership.isJoint, pendingConfigIndex <= log.committed else { return }
        let index = log.lastIndex + 1
        log.append(Entry(term: term, index: index, payload: .configChange(.leaveJoint)))
        uncommittedBytesCache = nil
        pendingConfigIndex = index
        broadcastAppend()
    }

    mutating func syncProgressWithMembership() {
        let members = membership.allMembers
        for peer in progress.keys where !members.contains(peer) {
            progress[peer] = nil
            reads.acks[peer] = nil
        }
        for peer in members where peer != id && progress[peer] == nil {
            progress[peer] = Progress(next: log.lastIndex + 1)
        }
    }

    public mutating func compact(through index: LogIndex) throws(CompactError) {
        guard index > log.snapshot.index else { throw .alreadyCompacted(index: index, snapshotIndex: log.snapshot.index) }
        guard index <= log.applied else { throw .notApplied(index: index, applied: log.applied) }
        log.compact(SnapshotMetadata(index: index, term: log.term(at: index)!, membership: membership(at: index)))
        appliedConfigs.removeAll { $0.index <= index }
    }

    /// The membership in force once entries through `index` are committed:
    /// the last configuration recorded at or before `index`, else the snapshot's.
    public func membership(at index: LogIndex) -> Membership {
        precondition(index >= log.snapshot.index && index <= configAppliedThrough, "membership at \(index) unknown")
        // Binary search for the first recorded configuration after `index`.
        var low = 0, high = appliedConfigs.count
        while low < high {
            let mid = (low + high) / 2
            if appliedConfigs[mid].index <= index { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? log.snapshot.membership : appliedConfigs[low - 1].membership
    }
}
