import Consensus

/// What a replica applies committed entries to: the MVCC store's apply
/// pipeline in the server, the key-value machine in the simulator. It also
/// answers the callers waiting on it: proposers once their entries are
/// applied, readers once the confirmed read index is.
public protocol ReplicaStateMachine {
    /// Replace the whole state by the snapshot at `snapshot` (its bytes
    /// came with the leader's message and are the machine's to find).
    mutating func install(_ snapshot: SnapshotMetadata)
    /// Apply `entries`, committed and in order; `state` is what a snapshot
    /// taken right after the last of them records.
    mutating func apply(_ entries: [Entry], through state: SnapshotMetadata)
    /// Read indexes the engine confirmed: serve each read once the machine
    /// has applied through its index.
    mutating func confirm(_ reads: [ReadState])
}
