import Consensus

/// The one place a replica's `Ready` contract runs (see `Ready`): persist,
/// send, apply, serve reads, advance, in that order, for any consensus
/// engine over any log store, transport and state machine. The server runs
/// it over its write-ahead log, its peer connections and its MVCC apply
/// pipeline; the simulator over `SimDisk`, `SimNetwork` and its key-value
/// machine, so the simulator checks the orderings the server runs.
///
/// Synchronous and single-owner: whoever owns a replica calls it from one
/// thread (the server's node loop) or one simulated step. It owns no
/// thread, so a process may hold many replicas (consensus groups) sharing
/// its transport, event loops and disk.
///
/// A Ready runs in two halves, so a disk that answers later (the
/// simulator's, with latency) fits as well as one that answers in line:
/// `start()` takes the Ready, hands its committed entries to the state
/// machine (they are durable here already), sends what may go at once and
/// writes; `finish()` syncs, then sends what promised durable state,
/// answers reads and advances the engine. Between the two no other Ready
/// is taken; the engine may still `step`, `tick` and `propose`.
///
/// Committed entries go first, before this Ready's sends and write: the
/// contract allows it (step 4 only needs them durable, which they are), it
/// is what etcd's server does (its apply loop gets them before the WAL
/// save), and it takes the slowest step of a write's path, the apply, off
/// the send and the fsync. Only a Ready that installs a snapshot applies
/// after the install, in `finish()`.
public struct ReplicaDriver<Engine: ConsensusEngine, Log: ReplicaLogStore, Transport: ReplicaTransport, Machine: ReplicaStateMachine> {
    public var engine: Engine
    public var log: Log
    public var transport: Transport
    public var machine: Machine
    /// The Ready between `start()` and `finish()`: its writes may not be durable yet.
    public private(set) var inFlight: Ready?
    /// What a snapshot right after the in-flight Ready's last committed
    /// entry records, read from the engine when the Ready was taken (the
    /// engine may install a newer snapshot before `finish()`).
    private var inFlightState: SnapshotMetadata?
    /// Test-only: an ordering bug the simulator must catch.
    @_spi(BugInjection) public var injectedBug: ReplicaBug?

    public init(engine: Engine, log: Log, transport: Transport, machine: Machine) {
        self.engine = engine
        self.log = log
        self.transport = transport
        self.machine = machine
    }

    /// Whether `start()` has a Ready to take: the engine has one and none is in flight.
    public var canStart: Bool { inFlight == nil && engine.hasReady }

    /// Steps 1 and 2 of the contract, and 4's apply: take the engine's
    /// Ready, hand its committed entries to the state machine (unless it
    /// installs a snapshot), send the messages that may go before the
    /// write (a leader's appends), and write the snapshot marker, entries
    /// and hard state. Returns the Ready (nil when the engine had none);
    /// its `mustSync` says whether `finish()` will sync.
    @discardableResult
    public mutating func start() throws(Log.Failure) -> Ready? {
        precondition(inFlight == nil, "a Ready is in flight: finish it before taking the next")
        guard engine.hasReady else { return nil }
        let ready = engine.ready()
        inFlightState = ready.committed.last.map {
            SnapshotMetadata(index: $0.index, term: $0.term, membership: engine.membership(at: $0.index))
        }
        if ready.snapshot == nil, let state = inFlightState {
            machine.apply(ready.committed, through: state)
            inFlightState = nil
        }
        transport.send(ready.messagesNow)
        try log.write(snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState)
        if injectedBug == .acknowledgesBeforePersist { transport.send(ready.messagesAfterPersist) }
        inFlight = ready
        return ready
    }

    /// Steps 2 to 5: make the writes durable (when the Ready says they must
    /// be), install the snapshot in the state machine, send the votes and
    /// acknowledgements (promises about what is now durable), hand the
    /// committed entries to the state machine with what a snapshot taken
    /// after them would record (if `start()` could not, for the snapshot),
    /// confirm the read indexes, advance.
    @discardableResult
    public mutating func finish() throws(Log.Failure) -> Ready {
        guard let ready = inFlight else { preconditionFailure("finish() without a Ready in flight") }
        if ready.mustSync { try log.sync() }
        inFlight = nil
        if let snapshot = ready.snapshot { machine.install(snapshot) }
        if injectedBug != .acknowledgesBeforePersist { transport.send(ready.messagesAfterPersist) }
        if let state = inFlightState { machine.apply(ready.committed, through: state) }
        inFlightState = nil
        if !ready.readStates.isEmpty { machine.confirm(ready.readStates) }
        engine.advance(ready)
        return ready
    }

    /// Every Ready the engine has, each started and finished in line: for
    /// a shell whose disk answers before the call returns. `beforeEach`
    /// sees the engine before each Ready is taken (the shell publishes
    /// what it reads about it there, before the Ready's committed entries
    /// reach the state machine). Returns how many.
    @discardableResult
    public mutating func runReadies(beforeEach: (Engine) -> Void = { _ in }) throws(Log.Failure) -> Int {
        var count = 0
        while canStart {
            count += 1
            precondition(count < Self.readiesPerCallMax, "the engine produces Readies without end")
            beforeEach(engine)
            try start()
            try finish()
        }
        return count
    }

    /// More Readies than this in one `runReadies()` means an engine that never settles: a bug.
    public static var readiesPerCallMax: Int { 10_000 }
}
