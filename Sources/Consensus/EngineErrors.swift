/// Why a proposal was refused. Nothing was appended; the caller may retry.
public enum ProposeError: Error, Sendable, Equatable, CustomStringConvertible {
    case notLeader(leaderHint: NodeID?)
    /// Proposals pause while leadership moves, so none is lost to the handover.
    case transferInProgress(to: NodeID)
    case overloaded(uncommittedBytes: Int, limit: Int)
    case entryTooLarge(bytes: Int, limit: Int)
    case batchTooLarge(entries: Int, limit: Int)
    case emptyBatch
    /// One membership change at a time: the previous one must commit first.
    case configChangePending(index: LogIndex)
    case invalidConfigChange(ConfigChangeError)
    /// Multi-Paxos: the leader already has `openSlots` slots proposed past
    /// its commit index and may open no more until some are chosen.
    case windowFull(openSlots: Int, limit: Int)

    public var description: String {
        switch self {
        case .notLeader(let hint?): "not leader; retry on member \(hint)"
        case .notLeader(nil): "no leader known; retry after an election timeout"
        case .transferInProgress(let to): "leadership is moving to member \(to); retry on it shortly"
        case .overloaded(let used, let limit):
            "\(used) uncommitted bytes would exceed the limit of \(limit); back off and retry"
        case .entryTooLarge(let bytes, let limit): "entry of \(bytes) bytes exceeds the limit of \(limit)"
        case .batchTooLarge(let n, let limit): "batch of \(n) entries exceeds the limit of \(limit)"
        case .emptyBatch: "a proposal needs at least one command"
        case .configChangePending(let index):
            "membership change at index \(index) is not committed yet; retry after it is"
        case .invalidConfigChange(let error): "invalid membership change: \(error)"
        case .windowFull(let open, let limit):
            "\(open) slots are open past the commit index and the window holds \(limit); back off and retry"
        }
    }
}

/// Why a linearizable read could not be started.
public enum ReadIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    case notLeader(leaderHint: NodeID?)
    case tooManyPendingReads(limit: Int)

    public var description: String {
        switch self {
        case .notLeader(let hint?): "not leader; send the read to member \(hint)"
        case .notLeader(nil): "no leader known; retry after an election timeout"
        case .tooManyPendingReads(let limit): "\(limit) reads already wait for confirmation; back off and retry"
        }
    }
}

/// Why leadership cannot move to the requested member.
public enum TransferError: Error, Sendable, Equatable, CustomStringConvertible {
    case notLeader(leaderHint: NodeID?)
    case notVoter(NodeID)
    case alreadyLeader

    public var description: String {
        switch self {
        case .notLeader(let hint?): "not leader; ask member \(hint)"
        case .notLeader(nil): "no leader known; retry after an election timeout"
        case .notVoter(let id): "member \(id) is not a voter; only voters can lead"
        case .alreadyLeader: "the target already leads"
        }
    }
}

/// Why the log could not be compacted to the requested index.
public enum CompactError: Error, Sendable, Equatable, CustomStringConvertible {
    case notApplied(index: LogIndex, applied: LogIndex)
    case alreadyCompacted(index: LogIndex, snapshotIndex: LogIndex)
    /// A snapshot records one membership, which must govern every slot
    /// after it; a Multi-Paxos configuration entry at `slot` governs only
    /// from `governsFrom` on. Compact again once the commit index passes it.
    case configurationPending(slot: LogIndex, governsFrom: LogIndex)

    public var description: String {
        switch self {
        case .notApplied(let index, let applied):
            "cannot compact through \(index): only \(applied) is applied; snapshot the state machine at an applied index"
        case .alreadyCompacted(let index, let snapshotIndex):
            "index \(index) is already covered by the snapshot at \(snapshotIndex)"
        case .configurationPending(let slot, let from):
            "the configuration entry in slot \(slot) governs only from slot \(from); compact once that is committed"
        }
    }
}
