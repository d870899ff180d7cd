import Consensus
import Engines
@_spi(BugInjection) import Replica
@_spi(BugInjection) import StateMachine

/// One simulated member: the real Raft core in the server's replica driver
/// (`SimReplica`), and the client requests waiting on it.
struct SimNode {
    enum Status: Equatable { case up, down, removed }

    struct ClientKey: Hashable {
        var client: Int
        var sequence: UInt64
    }

    let id: NodeID
    /// The running replica; nil while down (its memory is gone).
    private(set) var replica: SimReplica?
    /// What the disk kept while the member is down.
    private var parkedDisk = SimDisk()
    var status = Status.up
    /// Steps between ticks: the member's clock rate.
    var tickPeriod: UInt64
    var nextTickAt: UInt64
    /// When the disk finishes the Ready in flight (its fsync).
    var syncCompletesAt: UInt64?
    /// Writes proposed here, answered when applied here.
    var pendingWrites: [ClientKey: Int] = [:]
    /// Reads waiting for their read index.
    var pendingReads: [UInt64: ClientRequest] = [:]
    /// Reads with a confirmed index, waiting for the state machine to reach it.
    var confirmedReads: [(index: LogIndex, request: ClientRequest)] = []
    var lastRole = Role.follower
    /// The term and leader last seen: when either changes, reads this
    /// member forwarded can no longer be answered (the core forgets them).
    var lastTerm = Term.zero
    var lastLeader: NodeID?
    var restarts: UInt64 = 0

    /// Test-only: the state machine bug every start of this member runs with.
    let stateMachineBug: StateMachineBug?

    init(id: NodeID, core: AnyEngine, tickPeriod: UInt64, firstTick: UInt64, bug: ReplicaBug?, stateMachineBug: StateMachineBug?) {
        self.id = id
        parkedDisk.recordsDurableEntries = core.kind == .paxos
        self.stateMachineBug = stateMachineBug
        self.tickPeriod = tickPeriod
        self.nextTickAt = firstTick
        start(core, bug: bug)
    }

    /// The Raft core (up members only).
    var core: AnyEngine {
        get { replica!.engine }
        _modify { yield &replica!.engine }
    }
    /// The replica itself (up members only), for the simulator to drive.
    var running: SimReplica {
        get { replica! }
        _modify { yield &replica! }
    }
    var machine: SimStateMachine { replica!.machine.kv }
    var disk: SimDisk { replica?.log.disk ?? parkedDisk }
    var currentSnapshot: MachineSnapshot? { replica?.machine.currentSnapshot }

    /// Run `core` over what the disk kept.
    mutating func start(_ core: AnyEngine, bug: ReplicaBug?) {
        precondition(replica == nil, "member \(id) is already running")
        let snapshots = SimSnapshotInbox()
        replica = SimReplica(engine: core, log: SimLog(disk: parkedDisk, snapshots: snapshots), transport: SimOutbox(),
                             machine: SimMachine(restoring: parkedDisk.snapshot?.data, snapshots: snapshots, bug: stateMachineBug))
        replica!.injectedBug = bug
        parkedDisk = SimDisk()
        status = .up
    }

    /// Lose memory; keep only what the disk kept.
    mutating func crash(tear: Bool, random: inout DeterministicRandom) {
        if let replica {
            parkedDisk = replica.log.disk
            self.replica = nil
        }
        parkedDisk.crash(tear: tear, random: &random)
        status = .down
        syncCompletesAt = nil
        pendingWrites = [:]
        pendingReads = [:]
        confirmedReads = []
        lastRole = .follower
        lastTerm = .zero
        lastLeader = nil
    }

    /// Entries that reached the disk since last asked (synced, or kept by a torn write).
    mutating func takeNewlyDurable() -> [Entry] {
        if replica != nil { return replica!.log.disk.takeNewlyDurable() }
        return parkedDisk.takeNewlyDurable()
    }

    mutating func storeReceivedSnapshot(_ index: LogIndex, _ data: MachineSnapshot) {
        replica!.log.snapshots.store(index, data)
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
