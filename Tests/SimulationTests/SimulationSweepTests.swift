import Engines
import Simulation
import Testing

/// The sweep each core must pass on every change: 300 seeds of 5,000 steps
/// on 3 and on 5 members, every fault kind on (membership changes too, for
/// both engines), safety checked
/// after every step, then liveness and linearizability. Chunked so the
/// test runner spreads it over the cores.
@Suite struct SimulationSweepTests {
    static let seedsPerSize: UInt64 = 300
    static let chunk: UInt64 = 25
    static let chunks: [(engine: EngineKind, nodes: Int, first: UInt64)] = EngineKind.allCases.flatMap { engine in
        [3, 5].flatMap { nodes in
            stride(from: 1, through: seedsPerSize, by: Int(chunk)).map { (engine, nodes, UInt64($0)) }
        }
    }

    static func options(_ engine: EngineKind, seed: UInt64, nodes: Int, steps: Int = 5_000) -> SimulationOptions {
        var options = SimulationOptions(seed: seed, steps: steps, nodes: nodes, faults: .all)
        options.engine = engine
        return options
    }

    @Test(arguments: 0..<chunks.count)
    func sweep(_ chunkIndex: Int) {
        let (engine, nodes, first) = Self.chunks[chunkIndex]
        var operations = 0
        for seed in first..<(first + Self.chunk) {
            let report = Simulator.run(Self.options(engine, seed: seed, nodes: nodes))
            #expect(report.passed, "ballot-sim --engine \(engine) --seed \(seed) --nodes \(nodes): \(report.violation.map(\.description) ?? "")\n\(report.trace.joined(separator: "\n"))")
            operations += report.stats.operationsCompleted
            // A run that did nothing would prove nothing.
            #expect(report.stats.operationsCompleted > 0, "seed \(seed) completed no client operation")
            #expect(report.stats.leadersElected > 0, "seed \(seed) elected no leader")
        }
        #expect(operations > 100)
    }

    /// Faults really happen in the sweep: the seeds draw crashes, partitions,
    /// membership changes, transfers, snapshots and lost messages.
    @Test(arguments: EngineKind.allCases)
    func sweepExercisesEveryFaultPath(_ engine: EngineKind) {
        var total = SimulationReport.Stats()
        for seed in UInt64(1)...40 {
            let s = Simulator.run(Self.options(engine, seed: seed, nodes: 3)).stats
            total.crashes += s.crashes
            total.partitions += s.partitions
            total.membershipChanges += s.membershipChanges
            total.transfers += s.transfers
            total.snapshotsInstalled += s.snapshotsInstalled
            total.compactions += s.compactions
            total.messagesDropped += s.messagesDropped
            total.leadersElected += s.leadersElected
            total.writesLost += s.writesLost
        }
        #expect(total.crashes > 40)
        #expect(total.partitions > 40)
        #expect(total.membershipChanges > 40)
        #expect(total.transfers > 40)
        #expect(total.snapshotsInstalled > 10)
        #expect(total.compactions > 40)
        #expect(total.messagesDropped > 1_000)
        #expect(total.leadersElected > 200)
        #expect(total.writesLost > 20, "crashes must destroy unsynced writes for the disk faults to mean anything")
    }

    @Test func singleMemberAndSevenMembersRun() {
        for nodes in [1, 7] {
            let report = Simulator.run(SimulationOptions(seed: 3, steps: 3_000, nodes: nodes, faults: .all))
            #expect(report.passed, "\(nodes) members: \(report.violation.map(\.description) ?? "")")
            #expect(report.stats.operationsCompleted > 0)
        }
    }

    @Test func faultListParses() throws {
        #expect(try FaultSet(parsing: "all") == .all)
        #expect(try FaultSet(parsing: "none") == .none)
        #expect(try FaultSet(parsing: "drop, crash") == [.drop, .crash])
        #expect(throws: FaultSetError.unknown("meteor")) { try FaultSet(parsing: "drop,meteor") }
    }

    /// Seeds that once failed, each with what it found. A seed replays the
    /// same run only while the simulator draws the same way; the sweep
    /// covers the rest.
    static let regressions: [(engine: EngineKind, seed: UInt64, nodes: Int, found: String)] = [
        (.raft, 98, 3, "a member whose bootstrap hard state was torn away (its entries kept) won an election before committing in its term; the simulator read its still empty committed configuration as every member removed, and retired them all"),
        (.paxos, 39, 3, "a founder's torn first write kept its bootstrap slot but not the hard state's commit; restarted, it had no configuration and ignored every peer, so it never caught up"),
        (.paxos, 35, 3, "the same, another schedule"),
        (.paxos, 14, 5, "the same, on five members"),
        (.paxos, 122, 3, "membership changes: a member that joined with nothing knew no configuration, counted an empty one as a quorum, and led with a no-op over the founders' slot"),
        (.paxos, 166, 3, "membership changes: a joiner whose log held a change but not the founders' slot heard only itself and never caught up"),
        (.paxos, 167, 3, "a candidate reading long logs a page per round trip was deposed by promisers that timed out meanwhile; no round finished"),
        (.paxos, 69, 3, "a lagging member ignored the leader of a configuration it had not learned yet"),
        (.paxos, 266, 3, "two lagging candidates took promises from each other in turn while reading long logs; neither finished"),
        (.paxos, 606, 3, "a member removed by a change it had not learned kept taking promises from the candidate that could win; fixed by probing before a round"),
        (.paxos, 206, 3, "probes: a refusal did not say the refuser's round, so the prober probed the same round for ever"),
        (.paxos, 209, 3, "two members picked the same round number; the one that lost kept refusing the winner's round, which ignored its refusals"),
    ]

    @Test func regressionSeedsPass() {
        for (engine, seed, nodes, found) in Self.regressions {
            let report = Simulator.run(Self.options(engine, seed: seed, nodes: nodes))
            #expect(report.passed, "seed \(seed) (\(found)): \(report.violation.map(\.description) ?? "")")
        }
    }
}
