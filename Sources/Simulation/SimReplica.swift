import Consensus
import Engines
@_spi(BugInjection) import Replica
@_spi(BugInjection) import StateMachine

/// A simulated member's replica: the real Raft core in the same
/// `ReplicaDriver` the server runs, over the simulated disk, an outbox the
/// simulator routes through `SimNetwork`, and the server's state machine.
typealias SimReplica = ReplicaDriver<AnyEngine, SimLog, SimOutbox, SimMachine>

/// Snapshot bytes that arrived with leaders' `.snapshot` messages, by
/// index: shared by the log, which persists the one installed, and the
/// machine, which restores it (in the server both read the snapshot file).
final class SimSnapshotInbox {
    private(set) var received: [LogIndex: MachineSnapshot] = [:]
    static let heldMax = 4

    func store(_ index: LogIndex, _ data: MachineSnapshot) {
        received[index] = data
        if received.count > Self.heldMax, let lowest = received.keys.min() { received[lowest] = nil }
    }

    func take(_ index: LogIndex) -> MachineSnapshot {
        guard let data = received[index] else { preconditionFailure("a member installs a snapshot it never received (\(index))") }
        received = received.filter { $0.key > index }
        return data
    }

    func peek(_ index: LogIndex) -> MachineSnapshot {
        guard let data = received[index] else { preconditionFailure("a member persists a snapshot it never received (\(index))") }
        return data
    }
}

/// The simulated disk as a replica's log store.
struct SimLog: ReplicaLogStore {
    typealias Failure = Never
    var disk: SimDisk
    let snapshots: SimSnapshotInbox

    mutating func write(snapshot: SnapshotMetadata?, entries: [Entry], hardState: HardState?) {
        if let snapshot {
            disk.write(.installSnapshot(snapshot, snapshots.peek(snapshot.index), then: entries))
        } else if !entries.isEmpty {
            disk.write(.entries(entries))
        }
        if let hardState { disk.write(.hardState(hardState)) }
    }

    mutating func sync() { disk.sync() }
}

/// Messages the replica sent, for the simulator to put on the network.
struct SimOutbox: ReplicaTransport {
    var messages: [Message] = []
    mutating func send(_ messages: [Message]) { self.messages += messages }
}

/// The server's state machine (`SimStateMachine`: its `Applier` on an
/// `MVCCStore`) as a replica's state machine. What it applied and the reads
/// it confirmed wait here for the simulator to check and answer.
struct SimMachine: ReplicaStateMachine {
    var kv: SimStateMachine
    let snapshots: SimSnapshotInbox
    /// The snapshot the core's log starts from, to send to followers.
    var currentSnapshot: MachineSnapshot?
    /// Entries applied since the simulator last looked, with the command
    /// and result each carried.
    var applied: [(entry: Entry, outcome: (KVCommand, KVResult)?)] = []
    var confirmed: [ReadState] = []

    /// Test-only: the bug the machine runs with (kept for each snapshot install).
    let bug: StateMachineBug?

    init(restoring snapshot: MachineSnapshot?, snapshots: SimSnapshotInbox, bug: StateMachineBug?) {
        kv = SimStateMachine(restoring: snapshot, bug: bug)
        self.bug = bug
        currentSnapshot = snapshot
        self.snapshots = snapshots
    }

    mutating func install(_ snapshot: SnapshotMetadata) {
        let data = snapshots.take(snapshot.index)
        kv = SimStateMachine(restoring: data, bug: bug)
        currentSnapshot = data
    }

    mutating func apply(_ entries: [Entry], through state: SnapshotMetadata) {
        applied += kv.apply(entries, through: state)
    }

    mutating func confirm(_ reads: [ReadState]) { confirmed += reads }
}
