import Consensus
import Raft

/// A member's disk: what has been synced survives a crash; what has only
/// been written may vanish, or (with torn writes) survive in part.
struct SimDisk: Sendable {
    enum Write: Sendable {
        case hardState(HardState)
        /// Discard stored entries from `entries.first.index` on, then append these.
        case entries([Entry])
        /// Replace the whole log by a snapshot received from the leader,
        /// then append `then` (a Paxos acceptor keeps its acceptances past
        /// the snapshot): one write, as the WAL's batch makes it.
        case installSnapshot(SnapshotMetadata, MachineSnapshot, then: [Entry])
        /// A local snapshot: drop the entries it covers.
        case compact(SnapshotMetadata, MachineSnapshot)
    }

    private(set) var hardState = HardState()
    private(set) var snapshot: (metadata: SnapshotMetadata, data: MachineSnapshot)?
    private(set) var entries: [Entry] = []
    private(set) var unsynced: [Write] = []
    /// Writes lost or torn by crashes, for the run's statistics.
    private(set) var writesLost = 0
    /// Entries that reached the disk since the last `takeNewlyDurable()`:
    /// a Paxos acceptor's acceptances, for the simulator's checker.
    private(set) var newlyDurable: [Entry] = []
    /// Keep `newlyDurable` (only the Paxos checker reads it).
    var recordsDurableEntries = false

    mutating func takeNewlyDurable() -> [Entry] {
        defer { newlyDurable = [] }
        return newlyDurable
    }

    mutating func write(_ write: Write) { unsynced.append(write) }

    mutating func sync() {
        for write in unsynced { apply(write) }
        unsynced.removeAll()
    }

    /// A power cut. Unsynced writes are lost; with `tear`, a prefix of them
    /// reached the platter. The entries of one write are all or nothing,
    /// as the write-ahead log's batch records make them: a torn batch is
    /// dropped whole (see `WriteAheadLog`).
    mutating func crash(tear: Bool, random: inout DeterministicRandom) {
        defer { unsynced.removeAll() }
        guard tear, !unsynced.isEmpty else {
            writesLost += unsynced.count
            return
        }
        let survivors = Int.random(in: 0...unsynced.count, using: &random)
        for i in 0..<survivors { apply(unsynced[i]) }
        writesLost += unsynced.count - survivors
    }

    private mutating func apply(_ write: Write) {
        switch write {
        case .hardState(let state):
            hardState = state
        case .entries(let list):
            guard let first = list.first else { return }
            let base = (snapshot?.metadata.index ?? .zero) + 1
            precondition(first.index >= base && first.index <= base + UInt64(entries.count), "disk log gap at \(first.index)")
            entries.removeSubrange(Int(first.index.rawValue - base.rawValue)...)
            entries.append(contentsOf: list)
            if recordsDurableEntries { newlyDurable += list }
        case .installSnapshot(let metadata, let data, let then):
            snapshot = (metadata, data)
            entries = []
            if !then.isEmpty { apply(.entries(then)) }
        case .compact(let metadata, let data):
            let base = (snapshot?.metadata.index ?? .zero) + 1
            let drop = min(entries.count, Int(metadata.index.rawValue + 1 - base.rawValue))
            entries.removeFirst(drop)
            snapshot = (metadata, data)
        }
    }

    /// What a restarting member reads back.
    var durableState: DurableState {
        DurableState(hardState: hardState, snapshot: snapshot?.metadata, entries: entries)
    }
}
