import Consensus
import EtcdAPI
import Foundation
import Logging
import NIOCore
import NIOPosix
import Engines
import Raft
import Replica
import StateMachine
import Storage
import SwiftProtobuf

/// One member's consensus shell: the Raft core, its write-ahead log and the
/// MVCC store. The node's event loop (`loop`, a NIO event loop of its own)
/// runs each turn: inputs (peer messages, proposals, read requests) into
/// the core, then the core's Readies through `NodeReplica`, the
/// `ReplicaDriver` the simulator runs too (send what may go now → persist
/// with one fdatasync → send what needed the write → hand committed entries
/// to the apply thread → confirm reads). The member's peer connections live
/// on the same event loop, so a peer's frame is stepped, and the answer
/// written, on the thread that read it: no hand-off between the network and
/// consensus. Not the cooperative pool: a turn blocks on fsync.
///
/// Everything other threads touch (the inbox, the waiters, the published
/// status) is guarded by `condition`; the replica (core and WAL) belongs to
/// the event loop alone; the store is shared with readers under `storeLock`
/// (readers together, the apply thread alone).
public final class Node: @unchecked Sendable {
    public let id: NodeID
    public let clusterID: UInt64
    /// The consensus engine this member runs (`--engine`).
    public let engine: EngineKind
    let logger: Logger
    let tickInterval: Double
    let electionTicks: Int
    /// The most commands one proposal carries (the core's limit).
    let proposalBatchMax: Int
    let requestTimeout: Double
    /// etcd's --election-timeout: the time bound of a bounded-staleness
    /// read that names only revisions.
    let electionMilliseconds: Int
    /// This member's newest proof of freshness, for bounded-staleness reads.
    let freshness = ReadFreshness()

    let condition = NSCondition()
    private var inbox: [Input] = []
    private var proposals: [UInt64: Pending<Ballotpb_CommandResult>] = [:]
    private var reads: [UInt64: Pending<LogIndex>] = [:]
    private var configChanges: [UInt64: Pending<LogIndex>] = [:]
    private var appliedWaiters: [(index: LogIndex, pending: Pending<Void>)] = []
    private var published = Status()
    /// The database's size and NOSPACE alarm as of the last commit, for the
    /// quota check before proposing (which must not wait for the store
    /// lock, held through each commit's flush); guarded by `condition`.
    private var usage = StoreUsage(usedBytes: 0, noSpaceAlarm: false)
    /// How far the store's commits reach; guarded by `condition`.
    private var appliedSoFar: LogIndex
    private var nextRequestID: UInt64
    private var stopping = false
    private var stopped = false
    /// A turn is queued on `loop` for what the inbox holds; guarded by `condition`.
    private var turnScheduled = false
    /// The node's event loop: its turns, its ticks, its peer connections.
    let loop: any EventLoop
    /// The core's clock; the event loop's alone.
    private var ticks: RepeatedTask?
    /// The role after the last turn; the event loop's alone.
    private var lastRole = Role.follower
    /// Role, term and leader when the waiting reads were last checked
    /// (`failReadsIfLeadershipChanged`); the event loop's alone.
    private var readsLeadership: (Role, Term, NodeID?) = (.follower, .zero, nil)

    /// The Ready contract over the core, the log, the peers and the store;
    /// the event loop's alone. Set last in `init` (its parts hold the node).
    private var replica: NodeReplica!
    /// The consensus core, inside `replica`: the event loop's alone.
    var core: AnyEngine {
        get { replica.engine }
        _modify { yield &replica.engine }
    }
    /// The log, also written through `replica`; the event loop's alone.
    let wal: WriteAheadLog
    /// The state machine; readers share `storeLock`, writers hold it alone.
    let store: MVCCStore
    let storeLock = StoreLock()
    /// Held while the store's file is copied or replaced (snapshot capture,
    /// snapshot install, defragmentation): a copy may run beside applies,
    /// never beside a swap of the file under it.
    let environmentLock = NSLock()
    /// Snapshot files: captured to send to a lagging member, or received.
    let snapshots: SnapshotStore
    /// Applied entries between log compactions (etcd's --snapshot-count).
    let snapshotCount: UInt64
    /// Entries kept behind a compaction, so a briefly lagging follower
    /// catches up from the log rather than by a whole snapshot.
    let catchUpEntries: UInt64
    /// Test-only: the bug this member runs with (`ServerConfig.injectedBug`).
    let injectedBug: ServerBug?
    /// Linearizable reads on a follower share read-index round trips.
    let remoteReads = ReadIndexBatcher()
    /// Members a snapshot is being sent to now (one at a time each).
    var shipping: Set<NodeID> = []
    let applier: Applier
    /// etcd's users, roles and permissions (the applier's; read under `storeLock`).
    var auth: AuthStore { applier.auth }
    /// Simple tokens, assigned as Authenticate entries apply.
    let tokens: SimpleTokens
    /// JWT tokens instead, with `--auth-token jwt,...`: their keys, loaded
    /// once (`BallotServer.run` awaits them first, so bad options stop the start).
    let jwt: Task<JWTTokens, any Error>?
    /// Refused logins, tokens and permissions: logged and counted.
    let audit: AuthAudit
    /// bcrypt's cost for the passwords this member hashes (`--bcrypt-cost`).
    let bcryptCost: Int
    /// The applier's effects outside the store (also run for the members a snapshot brings).
    let applyEffects: ServerApplyEffects
    /// Committed entries wait here for the apply thread.
    let applyQueue: ApplyQueue
    /// The apply thread's alone: whether the open batch changed any key
    /// (the watchers are woken after its commit), and the index it applied through.
    private var changedSinceCommit = false
    private var appliedSinceCommit: LogIndex?
    /// Where the store's checkpoints flush (`checkpointStoreIfDue`): one
    /// thread, NIO's place for blocking file I/O.
    private let checkpointer = NIOThreadPool(numberOfThreads: 1)
    /// The leader's commit-only appends, held a moment (the loop's alone).
    var commitNotices = CommitNotices()
    /// A send of the held commit notices is scheduled (the loop's alone).
    var commitNoticesDue = false
    /// A checkpoint is under way on `checkpointer`, and when the last one
    /// started; the event loop's alone.
    private var checkpointing = false
    private var lastCheckpointStarted: ContinuousClock.Instant?
    let transport: PeerTransport
    /// Wakes watch streams after each applied batch that changed the store.
    let watchHub = WatchHub()
    let lessor: Lessor
    let members: MemberDirectory
    let metrics: ServerMetrics
    /// The database size at which writes stop (etcd's --quota-backend-bytes).
    let quotaBytes: Int
    /// etcd's --max-txn-ops, checked before a transaction is proposed.
    let maxTxnOperations: Int
    /// The largest command a client may propose (etcd's --max-request-bytes).
    let maxRequestBytes: Int

    enum Input {
        case messages([Consensus.Message])
        case propose(id: UInt64, command: [UInt8])
        case readIndex(context: UInt64, mayUseLease: Bool)
        case transfer(NodeID)
        case configChange(id: UInt64, ConfigChange)
    }

    /// A caller waiting for the loop or the apply thread: a task's
    /// continuation, or a callback (`proposeHere`) that hops to an event loop.
    struct Pending<T: Sendable> {
        let resume: @Sendable (Result<T, any Error>) -> Void
        var deadline: Date
    }

    /// What the quota check reads about the store.
    struct StoreUsage {
        var usedBytes: Int
        var noSpaceAlarm: Bool
    }

    /// What other threads may read about the member.
    public struct Status: Sendable {
        public var role = Role.follower
        public var term = Term.zero
        public var leader: NodeID?
        public var commitIndex = LogIndex.zero
        public var appliedIndex = LogIndex.zero
        public var voters: Set<NodeID> = []
        public var learners: Set<NodeID> = []
        /// True while a joint configuration (old and new voters) is in force.
        public var isJoint = false
        /// On the leader: how far each member's log is known to match.
        public var matchIndex: [NodeID: LogIndex] = [:]
        /// The members whose quorum decides the next entry: the committed
        /// configuration for Raft; for Multi-Paxos the one governing the
        /// slot after the commit index, which lags a change by α slots.
        public var governingMembers: Set<NodeID> = []
        /// Indexes a snapshot sent to a peer must not be taken at
        /// (`PaxosCore.unsettledSnapshotIndexes`; none for Raft).
        public var unsettledSnapshotIndexes: [ClosedRange<LogIndex>] = []
    }

    init(id: NodeID, clusterID: UInt64, core: AnyEngine, wal: WriteAheadLog, store: MVCCStore, snapshots: SnapshotStore,
         transport: PeerTransport, leases: [LeaseRecord], members: MemberDirectory, metrics: ServerMetrics, config: ServerConfig,
         loop: any EventLoop, logger: Logger, auth: AuthStore = AuthStore()) {
        self.id = id
        self.loop = loop
        self.clusterID = clusterID
        self.engine = core.kind
        self.wal = wal
        self.store = store
        self.snapshots = snapshots
        self.snapshotCount = config.snapshotCount
        self.catchUpEntries = config.snapshotCatchUpEntries
        self.injectedBug = config.injectedBug
        self.lessor = Lessor(records: leases, electionSeconds: Double(config.electionMilliseconds) / 1000)
        self.members = members
        self.metrics = metrics
        self.quotaBytes = config.quotaBackendBytes
        self.maxTxnOperations = config.maxTxnOperations
        self.maxRequestBytes = config.maxRequestBytes
        self.tokens = SimpleTokens(ttl: .seconds(config.authTokenTTLSeconds))
        let tokenOptions = config.authToken
        self.jwt = tokenOptions.hasPrefix("jwt") ? Task { try await JWTTokens.make(tokenOptions) } : nil
        self.bcryptCost = config.bcryptCost
        self.audit = AuthAudit(registry: metrics.registry, logger: logger)
        self.applyEffects = ServerApplyEffects(lessor: lessor, members: members, transport: transport, tokens: jwt == nil ? tokens : nil, logger: logger)
        self.applier = Applier(store: store, effects: applyEffects, metrics: metrics.mvcc, logger: logger, auth: auth)
        self.applyQueue = ApplyQueue()
        // A store that cannot be read fails at the node's first read, with its error.
        if let keys = try? store.liveKeyCount() { metrics.mvcc.setKeys(keys) }
        self.transport = transport
        self.logger = logger
        self.tickInterval = Double(config.heartbeatMilliseconds) / 1000
        self.requestTimeout = Double(config.requestTimeoutMilliseconds) / 1000
        self.electionMilliseconds = config.electionMilliseconds
        self.electionTicks = core.raft?.settings.electionTicks ?? core.paxos!.settings.electionTicks
        self.proposalBatchMax = core.raft?.settings.proposalBatchMax ?? core.paxos!.settings.proposalBatchMax
        // Request IDs restart per process; the origin member tells callers apart,
        // and the clock's high bits keep a restarted member from reusing an ID
        // that an old, still uncommitted entry carries.
        self.nextRequestID = UInt64(Date().timeIntervalSince1970 * 1000) << 20
        self.appliedSoFar = store.appliedIndex
        self.published = Self.status(of: core, applied: store.appliedIndex)
        recordUsage()
        replica = NodeReplica(engine: core, log: WALLogStore(wal: wal, metrics: metrics),
                              transport: NodePeerSender(node: self), machine: NodeApplyPipeline(node: self))
    }

    /// The store's size and alarm as of now, for `storeUsage`: called by
    /// whoever holds the store (at start, after each commit, after the file
    /// was replaced). A size that cannot be read counts as zero: the
    /// store's next write fails with the error instead.
    func recordUsage() {
        let current = StoreUsage(usedBytes: (try? store.quotaUsage(against: quotaBytes)) ?? 0, noSpaceAlarm: store.noSpaceAlarm)
        condition.withLock { usage = current }
    }

    /// The database's size and NOSPACE alarm as of the last commit.
    var storeUsage: StoreUsage { condition.withLock { usage } }

    /// Starts the apply thread and the core's clock on the event loop.
    func start() {
        applyQueue.start(ApplyQueue.Work(apply: { [self] batches in applyBatches(batches) }, commit: { [self] in commitApplied() },
                                         commitsAtOnce: { [self] in watchHub.isWatched || condition.withLock { !appliedWaiters.isEmpty } }))
        checkpointer.start()
        // Ticks follow the monotonic clock (a wall-clock step must neither
        // fire a burst of elections nor stall heartbeats), each a tick
        // interval after the last one ended: after a stall (a long fsync, a
        // paused VM) the missed ticks are not replayed at once, which would
        // fire elections for nothing.
        let tick = TimeAmount.nanoseconds(Int64(tickInterval * 1e9))
        loop.execute { [self] in
            lastRole = core.role
            ticks = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [self] _ in turn(tick: true) }
        }
    }

    /// Stop the turns; pending requests fail with "server stopped". Not
    /// from the event loop, whose last turn this waits for.
    func stop() {
        precondition(!loop.inEventLoop, "the node is stopped from outside its event loop")
        condition.withLock { stopping = true }
        // A checkpoint under way ends first (the file stays the store's).
        try? checkpointer.syncShutdownGracefully()
        loop.execute { [self] in
            ticks?.cancel()
            applyQueue.stop()
            failEverything(EtcdError.stopped)
            condition.lock()
            stopped = true
            condition.broadcast()
            condition.unlock()
        }
        condition.lock()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    /// Use the store beside other readers, while the apply thread cannot
    /// write to it: `body` must only read.
    func read<T>(_ body: (MVCCStore) throws -> T) throws -> T {
        try storeLock.reading(whenWriterHolds: { applyQueue.requestCommit() }) { try body(store) }
    }

    /// Proposals made here that wait to be applied.
    var pendingProposals: Int { condition.withLock { proposals.count } }

    public var status: Status {
        condition.lock()
        defer { condition.unlock() }
        return published
    }

    // MARK: Requests from other threads

    func receive(_ messages: [Consensus.Message]) {
        submit(.messages(messages))
    }

    /// Propose `command` here (this member must lead) and return its result
    /// once applied here.
    func proposeLocally(_ command: Ballotpb_Command) async throws -> Ballotpb_CommandResult {
        try await request(\.proposals) { requestID in try proposal(command, requestID: requestID) }
    }

    /// The loop's input for `command`, proposed here under `requestID`.
    private func proposal(_ command: Ballotpb_Command, requestID: UInt64) throws -> Input {
        var command = command
        command.id = requestID
        command.origin = id.rawValue
        let bytes: [UInt8] = try command.serializedBytes()
        // As etcd does: the encoded request, checked once, where it is encoded.
        if bytes.count > maxRequestBytes { throw EtcdError.requestTooLarge }
        return .propose(id: requestID, command: bytes)
    }

    /// A read index from the core: confirmed here as leader, or forwarded
    /// by this follower to its leader and answered (`RaftCore.readIndex`).
    /// `lease`: the leader may confirm it by its lease (where lease reads
    /// are on) instead of a heartbeat round.
    func readIndex(lease: Bool = false) async throws -> LogIndex {
        try await withCheckedThrowingContinuation { continuation in
            readIndex(lease: lease) { continuation.resume(with: $0) }
        }
    }

    /// Register a waiter under a fresh request ID in `waiters`, queue the
    /// input made for that ID, and return what the loop answers.
    private func request<T: Sendable>(
        _ waiters: ReferenceWritableKeyPath<Node, [UInt64: Pending<T>]>, _ makeInput: (UInt64) throws -> Input
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(waiters, makeInput) { continuation.resume(with: $0) }
        }
    }

    /// `request`, answered through `resume` (called once, on whichever
    /// thread settles the request: never with `condition` held).
    private func enqueue<T: Sendable>(
        _ waiters: ReferenceWritableKeyPath<Node, [UInt64: Pending<T>]>, _ makeInput: (UInt64) throws -> Input,
        resume: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        let refused: (any Error)? = condition.withLock {
            if stopping { return EtcdError.stopped }
            nextRequestID += 1
            let input: Input
            do {
                input = try makeInput(nextRequestID)
            } catch {
                return error as? EtcdError ?? .internal("\(error)")
            }
            self[keyPath: waiters][nextRequestID] = Pending(resume: resume, deadline: Date().addingTimeInterval(requestTimeout))
            inbox.append(input)
            return nil
        }
        if let refused { resume(.failure(refused)) } else { scheduleTurn() }
    }

    /// Returns once this member has applied `index`.
    func waitApplied(_ index: LogIndex) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waitApplied(index) { continuation.resume(with: $0) }
        }
    }

    /// `waitApplied`, answered through `resume` (at once if applied already).
    func waitApplied(_ index: LogIndex, then resume: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let now: Result<Void, any Error>? = condition.withLock {
            if published.appliedIndex >= index { return .success(()) }
            if stopping { return .failure(EtcdError.stopped) }
            appliedWaiters.append((index, Pending(resume: resume, deadline: Date().addingTimeInterval(requestTimeout))))
            return nil
        }
        if let now {
            resume(now)
        } else {
            // Waiters are released by the store's commit: not after the
            // apply thread's commit interval, but once `index` is applied.
            applyQueue.requestCommit()
        }
    }

    // MARK: Requests answered by callback
    //
    // For callers on an event loop (`UnaryCalls`): the answer comes from
    // the thread that settles the request (the apply thread for a write,
    // the node's event loop for a read index)
    // with no task in between. Each returns false, having done nothing,
    // when it cannot serve here (a write on a follower, no leader known);
    // the caller then takes the async path, which forwards or waits.

    /// `propose`, on the leader.
    func proposeHere(_ command: Ballotpb_Command, then done: @escaping @Sendable (Result<Ballotpb_CommandResult, any Error>) -> Void) -> Bool {
        forwardedHere(command) { result in
            done(result.flatMap { result in
                result.errorMessage.isEmpty ? .success(result) : .failure(EtcdError(code: result.errorCode, message: result.errorMessage))
            })
        }
    }

    /// `proposeHere` for a command a follower forwarded: the result as the
    /// applier wrote it, a refusal inside it. False unless this member leads.
    func forwardedHere(_ command: Ballotpb_Command, then done: @escaping @Sendable (Result<Ballotpb_CommandResult, any Error>) -> Void) -> Bool {
        guard status.leader == id else { return false }
        enqueue(\.proposals, { requestID in try proposal(command, requestID: requestID) }, resume: done)
        return true
    }

    /// `readIndex`, answered through `done`. An index confirmed without the
    /// lease is also this member's newest proof of freshness (`ReadFreshness`),
    /// dated when it was asked for.
    func readIndex(lease: Bool = false, then done: @escaping @Sendable (Result<LogIndex, any Error>) -> Void) {
        let askedAt = NIODeadline.now()
        enqueue(\.reads, { .readIndex(context: $0, mayUseLease: lease) }) { [freshness] result in
            if !lease, case .success(let index) = result { freshness.confirmed(index, askedAt: askedAt) }
            done(result)
        }
    }

    /// `linearizableBarrier`: on the leader, or on a follower sharing one
    /// forwarded read index among the reads that arrive while it is out
    /// (`remoteReads`). False while no leader is known (the async path
    /// waits for one).
    func linearizableBarrierHere(lease: Bool = false, then done: @escaping @Sendable (Result<Void, any Error>) -> Void) -> Bool {
        guard let leader = status.leader else { return false }
        let applied: @Sendable (Result<LogIndex, any Error>) -> Void = { [self] result in
            switch result {
            case .success(let index): waitApplied(index, then: done)
            case .failure(let error): done(.failure(error))
            }
        }
        if leader == id {
            readIndex(lease: lease, then: applied)
        } else {
            remoteReads.readIndex({ [self] resume in readIndex(then: resume) }, then: applied)
        }
        return true
    }

    /// Propose a configuration change here (this member must lead); its
    /// log index once proposed.
    func proposeConfigChangeLocally(_ change: ConfigChange) async throws -> LogIndex {
        try await request(\.configChanges) { .configChange(id: $0, change) }
    }

    func transferLeadership(to target: NodeID) {
        submit(.transfer(target))
    }

    private func submit(_ input: Input) {
        let accepted = condition.withLock {
            if stopping { return false }
            inbox.append(input)
            return true
        }
        if accepted { scheduleTurn() }
    }

    /// Queue a turn on the event loop for what the inbox holds, unless one
    /// is queued already: inputs arriving together share a turn (and its
    /// one fsync). From the event loop itself (a peer's frame) the turn
    /// runs once the loop has read what arrived with it.
    private func scheduleTurn() {
        let schedule = condition.withLock {
            if turnScheduled { return false }
            turnScheduled = true
            return true
        }
        if schedule { loop.execute { self.turn(tick: false) } }
    }

    // MARK: The loop

    /// One turn: the tick if one is due, the inbox into the core, the
    /// Readies through the replica, then what follows from them.
    private func turn(tick: Bool) {
        loop.preconditionInEventLoop()
        condition.lock()
        if stopping {
            condition.unlock()
            return
        }
        let inputs = inbox
        inbox = []
        if !tick { turnScheduled = false }
        condition.unlock()

        if tick {
            core.tick()
            expireRequests(now: Date())
            proposeExpiredLeaseRevocations()
        }
        handle(inputs)
        do {
            // Published before each Ready hands its committed entries to the
            // apply thread: a caller released once they are applied (a
            // membership change's) must find the configuration they
            // committed, which the core already holds.
            try replica.runReadies { core in publish(core) }
        } catch {
            // The log's state on disk is unknown: stop rather than promise anything.
            IOFailure.stop(logger, "writing the write-ahead log", error)
        }
        compactLogIfDue()
        checkpointStoreIfDue()
        if core.role != lastRole {
            logger.info("role changed", metadata: ["from": "\(lastRole)", "to": "\(core.role)", "term": "\(core.term)"])
            if core.role == .leader {
                lessor.promote(extend: tickInterval * Double(electionTicks))
            } else if lastRole == .leader {
                lessor.demote()
            }
            lastRole = core.role
        }
        failReadsIfLeadershipChanged()
        publish()
    }

    /// The core forgets the reads waiting for their index (a leader's
    /// unconfirmed ones, a follower's forwarded ones) whenever its role,
    /// term or leader changes: answer them now with etcd's "leader
    /// changed", which clients retry, rather than at their deadline.
    private func failReadsIfLeadershipChanged() {
        let now = (core.role, core.term, core.leader)
        guard now != readsLeadership else { return }
        readsLeadership = now
        condition.lock()
        let forgotten = reads.values
        reads = [:]
        condition.unlock()
        for pending in forgotten { pending.resume(.failure(EtcdError.leaderChanged)) }
    }

    private func handle(_ inputs: [Input]) {
        var batch: [(id: UInt64, command: [UInt8])] = []
        for input in inputs {
            switch input {
            case .messages(let messages):
                for message in messages where message.to == id { core.step(message) }
            case .propose(let requestID, let command):
                batch.append((requestID, command))
            case .readIndex(let context, let mayUseLease):
                do throws(ReadIndexError) {
                    try core.readIndex(context: context, mayUseLease: mayUseLease)
                } catch {
                    finishRead(context, .failure(error.isNotLeader ? EtcdError.noLeader : EtcdError.timeout))
                }
            case .configChange(let requestID, let change):
                let result: Result<LogIndex, any Error>
                do throws(ProposeError) {
                    result = .success(try core.proposeConfigChange(change))
                } catch {
                    result = .failure(Self.membershipError(error))
                }
                condition.lock()
                let pending = configChanges.removeValue(forKey: requestID)
                condition.unlock()
                pending?.resume(result)
            case .transfer(let target):
                do throws(TransferError) {
                    try core.transferLeadership(to: target)
                } catch {
                    logger.warning("leadership transfer refused", metadata: ["target": "\(target)", "reason": "\(error)"])
                }
            }
        }
        // One proposal per loop turn carries every command that arrived.
        var start = 0
        while start < batch.count {
            let chunk = batch[start..<min(batch.count, start + proposalBatchMax)]
            start += chunk.count
            do throws(ProposeError) {
                try core.propose(chunk.map(\.command))
            } catch .notLeader {
                // Never appended: this member stopped leading between the
                // request's arrival and this turn. It goes to the leader
                // there is now, as a request that arrives without one waits.
                for item in chunk { reroute(item.id, item.command, refusedIn: core.term) }
            } catch {
                let failure: EtcdError = switch error {
                case .notLeader, .transferInProgress: .noLeader
                case .entryTooLarge, .batchTooLarge: .requestTooLarge
                // Multi-Paxos's window of open slots is full: etcd's answer
                // to a proposal backlog, which clients retry.
                case .windowFull: .tooManyRequests
                default: .timeout
                }
                for item in chunk { finishProposal(item.id, .failure(failure)) }
            }
        }
    }

    /// The leader revokes expired leases through consensus, like any write.
    private func proposeExpiredLeaseRevocations() {
        guard core.role == .leader else { return }
        let expired = lessor.expired()
        guard !expired.isEmpty else { return }
        var commands: [[UInt8]] = []
        for id in expired {
            var command = Ballotpb_Command()
            command.leaseRevoke.id = id
            command.authHeader.memberInternal = true
            if let bytes = try? command.serializedBytes() as [UInt8] { commands.append(bytes) }
        }
        do throws(ProposeError) {
            try core.propose(commands)
            logger.info("revoking expired leases", metadata: ["leases": "\(expired)"])
        } catch {
            logger.warning("could not propose lease revocations; will retry", metadata: ["reason": "\(error)"])
        }
    }

    /// Apply thread: everything handed over since the last call, into the
    /// store's open batch (opened here, with `storeLock` taken, if none
    /// is). `commitApplied` commits it when `applyQueue` says it is due.
    ///
    /// The proposers are answered once their entries are applied, before
    /// the commit: an answered entry is committed, so durable in a
    /// quorum's logs, and its result is what replaying it gives, so a crash
    /// before the commit or the next checkpoint loses nothing acknowledged
    /// (the log replays it). Readers still see only committed state: they
    /// take `storeLock`, held until the commit, and ask for the commit when
    /// they find it held (`read`), so a client that reads after its answer
    /// finds its write. Waiters on the applied index are released after it.
    private func applyBatches(_ batches: [ApplyQueue.Batch]) {
        var outcomes: [Applier.Outcome] = []
        if !store.batchIsOpen {
            storeLock.lock()
            do throws(StorageError) {
                try store.openBatch()
            } catch {
                IOFailure.stop(logger, "opening a store transaction", error)
            }
        }
        do throws(StorageError) {
            for batch in batches {
                try applier.apply(batch.entries, through: batch.state, into: &outcomes)
            }
        } catch {
            IOFailure.stop(logger, "applying committed entries to the store", error)
        }
        answer(outcomes)
        changedSinceCommit = changedSinceCommit || !outcomes.isEmpty
        appliedSinceCommit = batches.last!.state.index
    }

    /// Apply thread: commit the open batch (it flushes nothing; a
    /// checkpoint does, when due), let readers in, wake the watchers and
    /// the waiters on the applied index.
    private func commitApplied() {
        precondition(store.batchIsOpen, "a commit without an open batch")
        let started = ContinuousClock.now
        do throws(StorageError) {
            try store.commitBatch()
        } catch {
            IOFailure.stop(logger, "committing applied entries to the store", error)
        }
        if changedSinceCommit { metrics.backendCommit.record(ContinuousClock.now - started) }
        recordUsage()
        storeLock.unlock()
        if changedSinceCommit { watchHub.notify() }
        changedSinceCommit = false
        if let index = appliedSinceCommit { noteApplied(index) }
        appliedSinceCommit = nil
    }

    /// Loop thread, each turn: the store's commits flush nothing
    /// (`CommitDurability.checkpointed`); every `checkpointInterval` a
    /// checkpoint on `checkpointer` flushes them all, while the apply
    /// thread goes on committing and readers go on reading.
    private func checkpointStoreIfDue() {
        guard !checkpointing, injectedBug != .compactsLogBeforeStoreSync else { return }
        let now = ContinuousClock.now
        if let last = lastCheckpointStarted, now - last < store.settings.checkpointInterval { return }
        lastCheckpointStarted = now
        checkpointing = true
        checkpointer.runIfActive(eventLoop: loop) { [self] in
            // Not while the file is copied or swapped (snapshots, defragmentation).
            environmentLock.lock()
            defer { environmentLock.unlock() }
            try store.checkpointIfDue()
        }.whenComplete { [self] result in
            checkpointing = false
            if case .failure(let error) = result, !(error is NIOThreadPoolError.ThreadPoolInactive) {
                IOFailure.stop(logger, "checkpointing the store", error)
            }
        }
    }

    /// Answer the proposals made on this member among `outcomes`, all in
    /// one task on the node's loop: their clients' connections live there,
    /// so each answer is written where it is made, and a connection's
    /// answers in the batch share one flush (`GRPCConnectionHandler`),
    /// instead of a hop and a write to the socket each.
    private func answer(_ outcomes: [Applier.Outcome]) {
        let mine = outcomes.filter { $0.origin == id.rawValue }
        guard !mine.isEmpty else { return }
        loop.execute { [self] in
            for outcome in mine { finishProposal(outcome.id, .success(outcome.result)) }
        }
    }

    /// The store's commits reach `index` (readers see it; durable once the
    /// next checkpoint or `MVCCStore.sync()` flushes it): publish it
    /// and release the callers waiting for it.
    func noteApplied(_ index: LogIndex) {
        condition.lock()
        appliedSoFar = index
        published.appliedIndex = index
        var ready: [Pending<Void>] = []
        appliedWaiters.removeAll { waiter in
            guard waiter.index <= index else { return false }
            ready.append(waiter.pending)
            return true
        }
        condition.unlock()
        for pending in ready { pending.resume(.success(())) }
    }

    /// How far the store's commits reach (durable once `MVCCStore.sync()`
    /// returns after this was read).
    var committedToStore: LogIndex { condition.withLock { appliedSoFar } }

    /// Loop thread: what other threads read about the member, from the core now.
    private func publish() { publish(core) }

    private func publish(_ core: AnyEngine) {
        condition.lock()
        let before = published.leader
        published = Self.status(of: core, applied: appliedSoFar)
        let changed = before != published.leader && published.leader != nil
        condition.unlock()
        if changed { metrics.leaderChanges.increment() }
    }

    static func membershipError(_ error: ProposeError) -> EtcdError {
        switch error {
        case .notLeader, .transferInProgress: .noLeader
        case .configChangePending: .unhealthy
        case .invalidConfigChange(.notMember): .memberNotFound
        case .invalidConfigChange(.alreadyVoter), .invalidConfigChange(.alreadyLearner): .memberExists
        case .invalidConfigChange(.noVotersLeft): .invalid("etcdserver: re-configuration failed due to not enough started members")
        default: .invalid("etcdserver: \(error)")
        }
    }

    private static func status(of core: AnyEngine, applied: LogIndex) -> Status {
        var status = Status()
        status.isJoint = core.membership.isJoint
        if core.role == .leader, let core = core.raft {
            for id in core.membership.voters.union(core.membership.outgoingVoters).union(core.membership.learners) {
                status.matchIndex[id] = id == core.id ? core.lastIndex : core.replicationState(of: id)?.match
            }
        } else if core.role == .leader, let core = core.paxos {
            for id in core.membership.allMembers {
                status.matchIndex[id] = id == core.id ? core.lastIndex : core.acceptedThrough(of: id)
            }
        }
        status.role = core.role
        status.term = core.term
        status.leader = core.leader
        status.commitIndex = core.commitIndex
        status.appliedIndex = applied
        status.voters = core.membership.voters.union(core.membership.outgoingVoters)
        status.learners = core.membership.learners
        if let paxos = core.paxos {
            status.governingMembers = paxos.configuration(for: paxos.commitIndex + 1).allMembers
            status.unsettledSnapshotIndexes = paxos.unsettledSnapshotIndexes
        } else {
            status.governingMembers = core.membership.allMembers
        }
        return status
    }

    /// A proposal the core refused because this member no longer leads
    /// (`ProposeError.notLeader`: nothing was appended) goes where the
    /// leader is now, or waits for one, up to the request's deadline; its
    /// caller gets that leader's answer. Without this, a write that raced a
    /// leader change failed with "no leader" though no leader was missing
    /// for long (seen under load: 300 concurrent puts across an election).
    private func reroute(_ requestID: UInt64, _ bytes: [UInt8], refusedIn term: Term) {
        condition.lock()
        let pending = proposals.removeValue(forKey: requestID)
        condition.unlock()
        guard let pending else { return }
        Task { [self] in
            do {
                let command = try Ballotpb_Command(serializedBytes: bytes)
                // The status this member published may still name it the
                // leader of the term it just lost: the next one takes it.
                pending.resume(.success(try await proposeAtLeader(command, until: pending.deadline, refused: (id, term))))
            } catch {
                metrics.proposalsFailed.increment()
                pending.resume(.failure(error))
            }
        }
    }

    private func finishProposal(_ requestID: UInt64, _ result: Result<Ballotpb_CommandResult, any Error>) {
        condition.lock()
        let pending = proposals.removeValue(forKey: requestID)
        condition.unlock()
        if case .failure = result, pending != nil { metrics.proposalsFailed.increment() }
        pending?.resume(result)
    }

    /// Loop thread: the core confirmed the read index of the read waiting under `context`.
    func confirmRead(_ context: UInt64, at index: LogIndex) {
        finishRead(context, .success(index))
    }

    private func finishRead(_ context: UInt64, _ result: Result<LogIndex, any Error>) {
        condition.lock()
        let pending = reads.removeValue(forKey: context)
        condition.unlock()
        pending?.resume(result)
    }

    /// Fail requests whose time is up: a proposal lost with a leader, a read
    /// a deposed leader can no longer confirm.
    private func expireRequests(now: Date) {
        condition.lock()
        let expiredProposals = proposals.filter { $0.value.deadline <= now }
        for key in expiredProposals.keys { proposals[key] = nil }
        let expiredReads = reads.filter { $0.value.deadline <= now }
        for key in expiredReads.keys { reads[key] = nil }
        var expiredApplied: [Pending<Void>] = []
        appliedWaiters.removeAll { waiter in
            guard waiter.pending.deadline <= now else { return false }
            expiredApplied.append(waiter.pending)
            return true
        }
        condition.unlock()
        if !expiredProposals.isEmpty { metrics.proposalsFailed.increment(by: Int64(expiredProposals.count)) }
        for pending in expiredProposals.values { pending.resume(.failure(EtcdError.timeout)) }
        for pending in expiredReads.values { pending.resume(.failure(EtcdError.timeout)) }
        for pending in expiredApplied { pending.resume(.failure(EtcdError.timeout)) }
    }

    private func failEverything(_ error: EtcdError) {
        condition.lock()
        let allProposals = proposals.values
        let allReads = reads.values
        let allApplied = appliedWaiters.map(\.pending)
        let allChanges = configChanges.values
        proposals = [:]
        reads = [:]
        configChanges = [:]
        appliedWaiters = []
        condition.unlock()
        for pending in allProposals { pending.resume(.failure(error)) }
        for pending in allReads { pending.resume(.failure(error)) }
        for pending in allChanges { pending.resume(.failure(error)) }
        for pending in allApplied { pending.resume(.failure(error)) }
    }
}

extension ReadIndexError {
    var isNotLeader: Bool {
        if case .notLeader = self { true } else { false }
    }
}
