import Consensus

/// Where a replica's log and hard state are kept: the write-ahead log in
/// the server, `SimDisk` in the simulator. A failure is an I/O failure:
/// the replica's durable state is unknown and it must stop.
public protocol ReplicaLogStore {
    associatedtype Failure: Error
    /// Queue one Ready's writes in the contract's order: the snapshot the
    /// log now starts after (its entries discarded), then entries (any
    /// stored entry at or after the first one's index superseded), then the
    /// hard state. Not durable until `sync()`.
    mutating func write(snapshot: SnapshotMetadata?, entries: [Entry], hardState: HardState?) throws(Failure)
    /// Make every write so far durable.
    mutating func sync() throws(Failure)
}
