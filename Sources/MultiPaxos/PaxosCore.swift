import Consensus

/// A complete Multi-Paxos member as a pure value: no I/O, no clock, no threads.
///
/// Every member is an acceptor and a learner; one at a time leads as the
/// distinguished proposer. A member whose leader falls silent for an
/// election timeout prepares a round of its own: phase 1 once for every
/// slot past its commit index, answered in pages. With a quorum of
/// promises it recovers each slot the quorum accepted a value in, taking
/// the value of the highest round (Lamport, "Paxos Made Simple" §2.2), and
/// fills slots no one in the quorum accepted with no-ops; then it runs
/// phase 2 alone, one accept per slot, with no further phase 1 while it
/// leads. Acceptors take slots in any order; a slot is chosen once a quorum
/// accepted it in one round, and the log is applied in slot order.
///
/// An acceptor learns a slot is chosen from its leader's commit index, but
/// only for a slot it accepted in that leader's round: a value it accepted
/// in an earlier round may have lost. The leader fills such slots again
/// (re-proposing a chosen value in its own round changes nothing Paxos
/// guarantees), so catch-up and commit notification are one mechanism.
///
/// Time arrives through `tick()`, peers' messages through `step(_:)`,
/// client work through `propose(_:)` and `readIndex(context:mayUseLease:)`;
/// every effect leaves through `ready()` under the contract on `Ready`,
/// so the same `ReplicaDriver`, log store and transport run it as run Raft.
public struct PaxosCore: ConsensusEngine {
    public let id: NodeID
    public let settings: PaxosSettings
    var random: DeterministicRandom

    public internal(set) var role: Role = .follower
    /// The highest proposal this member promised: its own while it prepares or leads.
    public internal(set) var promised: ProposalNumber
    public var term: Term { promised.round }
    public internal(set) var leader: NodeID?
    /// The membership with every chosen configuration entry in effect (what
    /// `member list` shows); quorums use `configuration(for:)`, which lags
    /// it by α slots.
    public internal(set) var membership: Membership
    var log: SlotLog
    /// The highest round heard of, promised or not: a new round goes above it.
    var highestRoundSeen: Term

    // Timers, in ticks.
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Ticks since this core was created: the leader's clock for leases.
    var ticks: UInt64 = 0
    /// Set on restart: until an election timeout has passed, refuse new
    /// rounds as if a leader had just been heard from, so a restarted
    /// member cannot help depose a leader whose lease it acknowledged.
    var restartGuard: Bool

    // Candidate state: phase 1 of this member's round.
    var recovery: Recovery?
    /// A pre-candidate's probe: the round it would prepare, and who said they would promise it.
    var probeRound: Term = .zero
    var probeGrants: Set<NodeID> = []

    // Leader state.
    var peers: [NodeID: PeerProgress] = [:]
    /// Acceptors (this member included, once durable) that accepted each
    /// open slot in this round.
    var acks: [LogIndex: Set<NodeID>] = [:]
    /// The last slot this leader recovered from its phase-1 quorum: any
    /// value chosen before it led lies at or below here, so a read index
    /// is at least this.
    var recoveredThrough: LogIndex = .zero
    /// Open slots through here count this leader's own acceptance (it is durable).
    var selfAckedThrough: LogIndex = .zero
    var reads = PaxosReads()
    var transferTarget: NodeID?
    /// Members heard from since the last check that a quorum still follows.
    var recentlyHeard: Set<NodeID> = []
    var leaseExpiresTick: UInt64 = 0
    /// Set once this leader tried to hand over: the new round may be
    /// promised past acceptors' stickiness, so no lease is trusted again.
    var leaseForfeited = false

    // Outputs waiting for `ready()`.
    var messagesNow: [Message] = []
    var messagesAfterPersist: [Message] = []
    var readStates: [ReadState] = []
    var snapshotToInstall: SnapshotMetadata?
    var persistedHardState: HardState
    var readyOutstanding = false
    /// The last slot the outstanding Ready writes.
    var writingThrough: LogIndex?

    /// A founding member of a new group: every founder holds the same first
    /// slot, the initial membership, chosen by construction.
    public init(id: NodeID, bootstrap membership: Membership, settings: PaxosSettings, seed: UInt64) throws(SettingsError) {
        try self.init(id: id, settings: settings, seed: seed, state: .empty)
        log.set(Entry(term: 1, index: 1, payload: .configChange(.bootstrap(membership))))
        log.commit(to: 1)
        self.membership = membership
        self.restartGuard = false
        self.highestRoundSeen = 1
    }

    /// A member restarting from what it persisted, or a new member joining
    /// with empty `state` (it learns the slots from the leader). `applied`:
    /// how far a state machine that persists itself has applied; those
    /// slots are chosen (only chosen slots are applied) and not handed out again.
    public init(id: NodeID, settings: PaxosSettings, seed: UInt64, state: DurableState, applied: LogIndex? = nil) throws(SettingsError) {
        self.id = id
        self.settings = try settings.validated()
        self.random = DeterministicRandom(seed: seed ^ (id.rawValue &* 0x9E37_79B9_7F4A_7C15))
        let snapshot = state.snapshot ?? .empty
        self.promised = ProposalNumber(round: state.hardState.term, proposer: state.hardState.vote)
        self.highestRoundSeen = state.hardState.term
        self.log = SlotLog(snapshot: snapshot, durable: state.entries, commit: state.hardState.commit)
        self.membership = snapshot.membership
        self.persistedHardState = state.hardState
        self.restartGuard = state.hardState.term > .zero
        // A founder's first slot is chosen by construction: a crash that
        // kept it but not the hard state's commit must not leave the member
        // without a configuration, deaf to every peer.
        if log.committed == .zero, case .configChange(let change)? = log.entry(at: 1)?.payload, case .bootstrap = change.kind {
            log.commit(to: 1)
        }
        if let applied {
            precondition(applied >= snapshot.index && applied <= log.lastIndex, "applied index \(applied) beyond the log")
            // Commit-only hard states are not synced: what was applied was chosen.
            if applied > log.committed { log.commit(to: applied) }
            log.applied = applied
            log.appliedHandedOut = applied
        }
        self.membership = membership(at: log.committed)
        resetElectionTimer()
    }

    // MARK: Observation

    public var commitIndex: LogIndex { log.committed }
    public var lastIndex: LogIndex { log.lastIndex }
    public var appliedIndex: LogIndex { log.applied }
    public var snapshotMetadata: SnapshotMetadata { log.snapshot }
    public var hardState: HardState { HardState(term: promised.round, vote: promised.proposer, commit: log.committed) }
    /// A slot's content: its value and the round it was accepted in (round zero: nothing accepted).
    public func slot(_ index: LogIndex) -> Entry? { log.entry(at: index) }
    public var leadershipTransferTarget: NodeID? { transferTarget }

    // MARK: Output helpers

    /// Queue a message. A leader's and a candidate's requests promise
    /// nothing about this member's disk, so they may beat its own write,
    /// once its own promise of the round is durable (else a crash could
    /// let it run the same round twice with different values). Answers
    /// (promises, acceptances) always wait for the write they report.
    mutating func send(_ kind: Message.Kind, to peer: NodeID) {
        let message = Message(from: id, to: peer, term: promised.round, kind: kind)
        switch kind {
        case .prepare, .accept, .heartbeat, .snapshot, .timeoutNow, .readIndex, .readIndexResponse:
            if persistedHardState.term == promised.round && persistedHardState.vote == promised.proposer {
                messagesNow.append(message)
            } else {
                messagesAfterPersist.append(message)
            }
        default:
            messagesAfterPersist.append(message)
        }
    }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        let n = settings.electionTicks
        randomizedElectionTimeout = Int.random(in: n..<(2 * n), using: &random)
    }

    /// Whole-state checks; tests call this after every step.
    public func checkInvariants() {
        precondition(log.committed <= log.lastIndex, "commit beyond the log")
        precondition(log.applied <= log.appliedHandedOut, "applied beyond what was handed out")
        precondition(log.appliedHandedOut <= log.committed, "handed out beyond commit")
        precondition(log.stableThrough <= log.lastIndex, "stable beyond the log")
        if role == .leader {
            precondition(leader == id, "a leader follows itself")
            precondition(promised.proposer == id, "a leader leads its own round")
            precondition(recovery == nil, "a leader has finished phase 1")
            precondition(acks.keys.allSatisfy { $0 > log.committed && $0 <= log.lastIndex }, "acknowledgements outside the open slots")
            var slot = log.committed + 1
            while slot <= log.lastIndex {
                precondition(log.entry(at: slot)?.term == promised.round, "a leader's open slot \(slot) holds a value of another round")
                slot = slot + 1
            }
        }
        if role == .candidate { precondition(promised.proposer == id && recovery != nil, "a candidate prepares its own round") }
        if role != .leader { precondition(acks.isEmpty && peers.isEmpty, "leader state on a \(role)") }
        precondition(log.lastIndex == log.snapshot.index || log.entry(at: log.lastIndex).map { !SlotLog.isVacant($0) } == true,
                     "the log ends in a vacant slot")
        precondition(promised.round <= highestRoundSeen || highestRoundSeen == .zero, "promised a round above every round heard of")
    }
}

/// A candidate's phase 1: who promised, how far each one's answer has
/// been read, and the highest-round value seen in each slot.
struct Recovery: Sendable {
    /// The first slot the round was prepared for: the candidate's commit + 1.
    let firstSlot: LogIndex
    /// Promisers whose answer is complete.
    var complete: Set<NodeID>
    /// Members sent this round's prepare.
    var asked: Set<NodeID> = []
    /// Promisers still paging: the next slot to ask each for.
    var paging: [NodeID: LogIndex] = [:]
    /// Values read of each paging promiser's current page: its next page
    /// is asked for once a whole page (`promiseEntriesMax`) is read.
    var pageRead: [NodeID: Int] = [:]
    /// Messages of a page that arrived before an earlier one, by first slot.
    var heldPages: [NodeID: [LogIndex: (accepted: [Entry], more: Bool)]] = [:]
    /// The highest-round value any promiser accepted in each slot.
    var values: [LogIndex: Entry] = [:]
    var lastSlot: LogIndex

    init(firstSlot: LogIndex, selfID: NodeID) {
        self.firstSlot = firstSlot
        self.complete = [selfID]
        self.asked = [selfID]
        self.lastSlot = firstSlot - 1
    }

    mutating func merge(_ entry: Entry) {
        if let held = values[entry.index], held.term >= entry.term { return }
        values[entry.index] = entry
        lastSlot = max(lastSlot, entry.index)
    }
}

/// The leader's view of one acceptor.
struct PeerProgress: Sendable {
    /// Every slot through here is accepted there in this round (or chosen
    /// and known so); heard from the acceptor, never guessed.
    var through: LogIndex
    /// Whether the acceptor has answered in this round at all.
    var heard = false
    /// The leader's last slot at the previous heartbeat: slots at or
    /// below it that the acceptor still lacks were lost on the way and are
    /// sent again.
    var lastSlotAtPreviousHeartbeat: LogIndex
}
