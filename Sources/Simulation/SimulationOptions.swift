import Engines
@_spi(BugInjection) import MultiPaxos
@_spi(BugInjection) import Raft
@_spi(BugInjection) import Replica
@_spi(BugInjection) import StateMachine

/// One simulation run, fully determined by these values.
public struct SimulationOptions: Sendable, Equatable {
    public var seed: UInt64
    /// Steps of the safety phase (faults on). One step is one unit of
    /// simulated time; a member ticks about every `tickPeriodNominal` steps.
    public var steps: Int
    public var nodes: Int
    public var faults: FaultSet
    /// Steps the liveness phase may take, after everything heals, for a
    /// leader to emerge and every pending client operation to complete.
    public var livenessStepsMax: Int
    /// Events kept for the failure trace.
    public var traceLength: Int
    /// Keep the trace even when the run passes (for reading a run, or diffing two).
    public var keepTrace = false
    /// The consensus core every member runs.
    public var engine = EngineKind.raft
    @_spi(BugInjection) public var injectedBug: InjectedBug?
    /// A bug in the Multi-Paxos core (runs with `engine == .paxos`).
    @_spi(BugInjection) public var injectedPaxosBug: PaxosBug?
    /// An ordering bug in the replica driver the server and the simulator share.
    @_spi(BugInjection) public var injectedReplicaBug: ReplicaBug?
    /// A bug in the server's state machine (its `Applier`), which the simulator runs.
    @_spi(BugInjection) public var injectedStateMachineBug: StateMachineBug?

    public static let stepsDefault = 5_000
    public static let stepsMax = 10_000_000
    public static let nodesAllowed = [1, 3, 5, 7]
    public static let livenessStepsMaxDefault = 8_000
    public static let traceLengthDefault = 60
    public static let tickPeriodNominal: UInt64 = 10

    public init(seed: UInt64, steps: Int = stepsDefault, nodes: Int = 3, faults: FaultSet = .all) {
        self.seed = seed
        self.steps = steps
        self.nodes = nodes
        self.faults = faults
        self.livenessStepsMax = Self.livenessStepsMaxDefault
        self.traceLength = Self.traceLengthDefault
    }

    public func validated() throws(SimulationOptionsError) -> SimulationOptions {
        guard Self.nodesAllowed.contains(nodes) else { throw .nodes(nodes) }
        guard (1...Self.stepsMax).contains(steps) else { throw .steps(steps) }
        return self
    }
}

public enum SimulationOptionsError: Error, Sendable, Equatable, CustomStringConvertible {
    case nodes(Int)
    case steps(Int)
    public var description: String {
        switch self {
        case .nodes(let n): "--nodes is \(n); use one of \(SimulationOptions.nodesAllowed.map(String.init).joined(separator: ", "))"
        case .steps(let n): "--steps is \(n); use 1...\(SimulationOptions.stepsMax)"
        }
    }
}

/// What a run found.
public struct SimulationReport: Sendable {
    public var seed: UInt64
    public var violation: SafetyViolation?
    /// The drawn fault rates and settings, printed first so a run can be read.
    public var parameters: String
    /// The last events before the failure, one per line.
    public var trace: [String]
    public var stats: Stats

    public struct Stats: Sendable, Equatable {
        public var stepsRun = 0
        public var livenessSteps = 0
        public var operationsCompleted = 0
        public var operationsPending = 0
        public var leadersElected = 0
        public var crashes = 0
        public var partitions = 0
        public var membershipChanges = 0
        public var transfers = 0
        public var snapshotsInstalled = 0
        public var compactions = 0
        public var messagesSent = 0
        public var messagesDropped = 0
        public var entriesCommitted = 0
        /// Unsynced writes that crashes destroyed or tore.
        public var writesLost = 0

        public init() {}
    }

    public var passed: Bool { violation == nil }

    public var summary: String {
        let s = stats
        let head = passed ? "seed \(seed) ok" : "seed \(seed) FAILED: \(violation!)"
        return head
            + " | ops \(s.operationsCompleted) done, \(s.operationsPending) pending; leaders \(s.leadersElected); crashes \(s.crashes);"
            + " partitions \(s.partitions); membership \(s.membershipChanges); transfers \(s.transfers);"
            +  " snapshots sent \(s.snapshotsInstalled); compactions \(s.compactions); committed \(s.entriesCommitted);"
            + " writes lost \(s.writesLost);"
            + " msgs \(s.messagesSent) (\(s.messagesDropped) lost); liveness \(s.livenessSteps) steps"
    }
}
