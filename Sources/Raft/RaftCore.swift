import Consensus

/// A complete Raft member as a pure value: no I/O, no clock, no threads.
///
/// Time arrives through `tick()`, peers' messages through `step(_:)`, client
/// work through `propose(_:)` and `readIndex(context:mayUseLease:)`. Every effect leaves
/// through `ready()`, under the contract written on `Ready`.
public struct RaftCore: ConsensusEngine {
    public let id: NodeID
    public let settings: RaftSettings
    var random: DeterministicRandom

    public internal(set) var role: Role = .follower
    public internal(set) var term: Term
    var vote: NodeID?
    public internal(set) var leader: NodeID?
    public internal(set) var membership: Membership
    var log: RaftLog
    /// Membership changes in entries through here have taken effect.
    var configAppliedThrough: LogIndex
    /// Each configuration that took effect after the snapshot, with the
    /// index of the entry that made it, in log order: `membership(at:)`
    /// answers from here in O(log n) instead of folding the log (the
    /// shell asks on every `Ready`, and the log may hold 100,000 entries).
    var appliedConfigs: [(index: LogIndex, membership: Membership)] = []

    // Timers, in ticks.
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Ticks since this core was created: the leader's clock for leases.
    var ticks: UInt64 = 0
    /// Set on restart from durable state: until an election timeout has
    /// passed, act as if a leader had just been heard from, so a restarted
    /// member cannot help depose a leader whose lease it acknowledged.
    var restartGuard: Bool

    // Candidate state.
    var votes: [NodeID: Bool] = [:]
    /// The membership the current campaign counts votes in.
    var campaignMembership = Membership.empty

    // Leader state.
    var progress: [NodeID: Progress] = [:]
    var transferTarget: NodeID?
    var pendingConfigIndex: LogIndex = .zero
    var uncommittedBytesCache: Int?
    var reads = ReadQueue()
    /// The leader's tick at which its read lease ends.
    var leaseExpiresTick: UInt64 = 0
    /// Set once this leader tried to hand over in its term: a TimeoutNow (or
    /// the transfer votes it causes) may arrive arbitrarily late and elect a
    /// leader past followers' stickiness, so no lease is trusted again.
    var leaseForfeited = false

    // Outputs waiting for `ready()`.
    var messagesNow: [Message] = []
    var messagesAfterPersist: [Message] = []
    var readStates: [ReadState] = []
    var snapshotToInstall: SnapshotMetadata?
    var persistedHardState: HardState
    var readyOutstanding = false

    /// A founding member of a new group. Every founding member writes the
    /// same first entry (the initial membership at term 1), so a member added
    /// later learns the founding membership from the log itself.
    public init(id: NodeID, bootstrap membership: Membership, settings: RaftSettings, seed: UInt64) throws(SettingsError) {
        let first = Entry(term: 1, index: 1, payload: .configChange(.bootstrap(membership)))
        try self.init(
            id: id, settings: settings, seed: seed,
            state: DurableState(hardState: HardState(term: 1, vote: nil, commit: 1), snapshot: nil, entries: []),
            unstable: [first], applied: nil)
    }

    /// A member restarting from what it persisted, or a new member joining
    /// an existing group with empty `state` (it will learn the log from the leader).
    /// `applied` is how far a durable state machine has already applied; by
    /// default, only what the snapshot holds.
    public init(id: NodeID, settings: RaftSettings, seed: UInt64, state: DurableState, applied: LogIndex? = nil) throws(SettingsError) {
        try self.init(id: id, settings: settings, seed: seed, state: state, unstable: [], applied: applied)
    }

    private init(
        id: NodeID, settings: RaftSettings, seed: UInt64, state: DurableState, unstable: [Entry], applied: LogIndex?
    ) throws(SettingsError) {
        self.id = id
        self.settings = try settings.validated()
        self.random = DeterministicRandom(seed: seed ^ (id.rawValue &* 0x9E37_79B9_7F4A_7C15))
        let snapshot = state.snapshot ?? .empty
        self.term = state.hardState.term
        self.vote = state.hardState.vote
        self.membership = snapshot.membership
        self.configAppliedThrough = snapshot.index
        var log = RaftLog(snapshot: snapshot, entries: state.entries, committed: snapshot.index, applied: snapshot.index)
        for entry in unstable { log.append(entry) }
        log.stableIndex = snapshot.index + UInt64(state.entries.count)
        // A state machine that persists itself may have applied past a commit
        // index whose write was lost (commit-only changes are not synced):
        // what it applied was committed, so the commit index is at least that.
        log.commit(to: max(state.hardState.commit, snapshot.index, applied ?? .zero))
        if let applied {
            precondition(applied >= snapshot.index && applied <= log.lastIndex, "applied index \(applied) beyond the log")
            log.applied = applied
            log.appliedHandedOut = applied
        }
        self.log = log
        self.persistedHardState = unstable.isEmpty ? state.hardState : HardState()
        self.restartGuard = unstable.isEmpty && state.hardState.term > .zero
        applyConfigChanges()
        resetElectionTimer()
    }

    // MARK: Observation

    public var commitIndex: LogIndex { log.committed }
    public var lastIndex: LogIndex { log.lastIndex }
    public var lastTerm: Term { log.lastTerm }
    public var firstIndex: LogIndex { log.firstIndex }
    public var stableIndex: LogIndex { log.stableIndex }
    public var appliedIndex: LogIndex { log.applied }
    public var votedFor: NodeID? { vote }
    public var snapshotMetadata: SnapshotMetadata { log.snapshot }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    public func entry(at index: LogIndex) -> Entry? { log.entry(at: index) }
    public var leadershipTransferTarget: NodeID? { transferTarget }
    /// Index of the last membership change this leader appended.
    public var pendingConfigurationIndex: LogIndex { pendingConfigIndex }

    /// The leader's view of a follower, for tests and status pages.
    public func replicationState(of peer: NodeID) -> (match: LogIndex, next: LogIndex, state: String)? {
        progress[peer].map { ($0.match, $0.next, $0.state.description) }
    }

    /// The membership an election runs under: the committed one with every
    /// change later in the log applied (Raft thesis §4.1, the latest
    /// configuration in the log). Safe for elections because a leader appends
    /// `leaveJoint` only after the joint configuration committed; and it keeps
    /// a removed member that holds its own removal from campaigning on the
    /// strength of the configuration it was removed from. Commit decisions
    /// keep using the committed `membership`, which is never weaker.
    var latestMembership: Membership {
        membership(folding: membership, after: configAppliedThrough, through: log.lastIndex)
    }

    /// `base` with every valid membership change in entries `(after, through]` applied.
    func membership(folding base: Membership, after: LogIndex, through: LogIndex) -> Membership {
        var result = base
        var index = after + 1
        while index <= through {
            if case .configChange(let change)? = log.entry(at: index)?.payload,
                case .success(let next) = change.applied(to: result)
            {
                result = next
            }
            index = index + 1
        }
        return result
    }

    var isPromotable: Bool { latestMembership.isVoter(id) }

    // MARK: Output helpers

    mutating func send(_ kind: Message.Kind, to peer: NodeID, term messageTerm: Term? = nil) {
        let message = Message(from: id, to: peer, term: messageTerm ?? term, kind: kind)
        switch kind {
        case .append, .heartbeat, .snapshot, .timeoutNow:
            precondition(role == .leader, "only a leader sends \(message)")
            fallthrough
        case .readIndex, .readIndexResponse:
            // These promise nothing about this member's disk, so they may
            // beat its own write, but only once its term and vote are
            // durable: a lone voter wins in the same step it raises its
            // term, and a crash then would let it lead the same term twice
            // with different entries.
            if persistedHardState.term == term && persistedHardState.vote == vote {
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

    /// Whole-state checks; the simulator calls this after every step.
    public func checkInvariants() {
        precondition(log.committed <= log.lastIndex, "commit beyond the log")
        precondition(log.applied <= log.appliedHandedOut, "applied beyond what was handed out")
        precondition(log.appliedHandedOut <= log.committed, "handed out beyond commit")
        precondition(log.stableIndex <= log.lastIndex, "stable beyond the log")
        precondition(configAppliedThrough == log.committed || configAppliedThrough == log.snapshot.index,
                     "membership lags commit")
        precondition((appliedConfigs.last?.membership ?? log.snapshot.membership) == membership,
                     "the configurations recorded since the snapshot end elsewhere than the membership in force")
        precondition(appliedConfigs.first.map { $0.index > log.snapshot.index } ?? true, "a recorded configuration inside the snapshot")
        if role == .leader {
            precondition(leader == id, "a leader follows itself")
            precondition(vote == id, "a leader voted for itself")
        }
        if role == .candidate { precondition(vote == id, "a candidate voted for itself") }
    }
}
