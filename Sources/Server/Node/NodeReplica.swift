import Consensus
import Engines
import Replica
import Storage

/// A member's replica: its consensus core (`--engine`) over its write-ahead log, its peer
/// connections and its store's apply pipeline. The node loop drives it.
typealias NodeReplica = ReplicaDriver<AnyEngine, WALLogStore, NodePeerSender, NodeApplyPipeline>

/// The write-ahead log as a replica's log store; each sync is timed for
/// etcd's `etcd_disk_wal_fsync_duration_seconds`.
struct WALLogStore: ReplicaLogStore {
    let wal: WriteAheadLog
    let metrics: ServerMetrics

    func write(snapshot: SnapshotMetadata?, entries: [Entry], hardState: HardState?) throws(StorageError) {
        if let snapshot {
            // Durable in the log before the store changes: a crash in
            // between finishes the install from the file at restart. The
            // entries kept after it are one batch with the marker.
            let marker = SnapshotMarker(index: snapshot.index, term: snapshot.term, replacesLog: true, membership: snapshot.membership)
            try wal.append(snapshot: marker, thenEntries: entries, hardState: hardState)
        } else if !entries.isEmpty || hardState != nil {
            try wal.append(hardState: hardState, entries: entries)
        }
    }

    func sync() throws(StorageError) {
        let started = ContinuousClock.now
        try wal.sync()
        metrics.walFsync.record(ContinuousClock.now - started)
    }
}

/// The peer connections as a replica's transport, through the node
/// (which ships a snapshot's bytes with its announcement).
struct NodePeerSender: ReplicaTransport {
    unowned let node: Node
    func send(_ messages: [Consensus.Message]) {
        if !messages.isEmpty { node.send(messages) }
    }
}

/// The store as a replica's state machine, through the node's apply
/// thread: committed entries are queued for it, a snapshot is installed in
/// place, and a confirmed read index goes back to the read waiting for it
/// (which then waits for the store to reach it).
struct NodeApplyPipeline: ReplicaStateMachine {
    unowned let node: Node
    func install(_ snapshot: SnapshotMetadata) { node.install(snapshot) }
    func apply(_ entries: [Entry], through state: SnapshotMetadata) {
        node.applyQueue.push(ApplyQueue.Batch(entries: entries, state: state))
    }
    func confirm(_ reads: [ReadState]) {
        for read in reads { node.confirmRead(read.context, at: read.index) }
    }
}
