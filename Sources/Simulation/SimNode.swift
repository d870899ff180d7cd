import Consensus
import Raft

/// One simulated member: the real Raft core inside a shell that owns a
/// simulated disk, the key-value state machine and pending client requests.
struct SimNode {
    enum Status: Equatable { case up, down, removed }

    struct ClientKey: Hashable {
        var client: Int
        var sequence: UInt64
    }

    let id: NodeID
    var core: RaftCore?
    var disk = SimDisk()
    var machine = KVStateMachine()
    var status = Status.up
    /// Steps between ticks: the member's clock rate.
    var tickPeriod: UInt64
    var nextTickAt: UInt64
    /// A Ready whose writes await their fsync.
    var outstanding: (ready: Ready, completesAt: UInt64)?
    /// Writes proposed here, answered when applied here.
    var pendingWrites: [ClientKey: Int] = [:]
    /// Reads waiting for their read index.
    var pendingReads: [UInt64: ClientRequest] = [:]
    /// Reads with a confirmed index, waiting for the state machine to reach it.
    var confirmedReads: [(index: LogIndex, request: ClientRequest)] = []
    /// Snapshot bytes that arrived with `.snapshot` messages, by index.
    var receivedSnapshots: [LogIndex: KVSnapshot] = [:]
    /// The snapshot the core's log starts from, to send to followers.
    var currentSnapshot: KVSnapshot?
    var lastRole = Role.follower
    var restarts: UInt64 = 0
    static let receivedSnapshotsMax = 4

    init(id: NodeID, core: RaftCore, tickPeriod: UInt64, firstTick: UInt64) {
        self.id = id
        self.core = core
        self.tickPeriod = tickPeriod
        self.nextTickAt = firstTick
    }

    /// Lose memory; keep only what the disk kept.
    mutating func crash(tear: Bool, random: inout DeterministicRandom) {
        core = nil
        status = .down
        disk.crash(tear: tear, random: &random)
        machine = KVStateMachine()
        outstanding = nil
        pendingWrites = [:]
        pendingReads = [:]
        confirmedReads = []
        receivedSnapshots = [:]
        currentSnapshot = nil
        lastRole = .follower
    }

    mutating func storeReceivedSnapshot(_ index: LogIndex, _ data: KVSnapshot) {
        receivedSnapshots[index] = data
        if receivedSnapshots.count > Self.receivedSnapshotsMax, let lowest = receivedSnapshots.keys.min() {
            receivedSnapshots[lowest] = nil
        }
    }
}

/// A simulated client: one operation at a time, retried with the same
/// sequence number until answered, so the state machine applies it once.
struct SimClient {
    let id: Int
    var sequence: UInt64 = 0
    var target: NodeID
    var nextActionAt: UInt64
    var outstanding: (operation: KVOperation, history: Int, deadline: UInt64)?
}
