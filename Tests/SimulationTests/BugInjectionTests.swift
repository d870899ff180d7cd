import Engines
@_spi(BugInjection) import MultiPaxos
@_spi(BugInjection) import Raft
@_spi(BugInjection) import Replica
@_spi(BugInjection) import Simulation
@_spi(BugInjection) import StateMachine
import Testing

/// Proof that the checkers bite: each deliberately injected bug must be
/// caught by a sweep of at most 200 seeds, and by the checker meant for it.
@Suite struct BugInjectionTests {
    static let seedsMax: UInt64 = 200

    static let expected: [(InjectedBug, nodes: Int, Set<SafetyViolation.Property>)] = [
        (.doubleVote, 3, [.electionSafety]),
        (.keepConflict, 3, [.logMatching, .stateMachineSafety, .leaderCompleteness]),
        (.commitOldTerm, 3, [.leaderCompleteness, .stateMachineSafety]),
        (.commitOldTerm, 5, [.leaderCompleteness, .stateMachineSafety]),
        (.readWithoutQuorum, 3, [.linearizability]),
        (.forwardedReadWithoutQuorum, 3, [.linearizability]),
    ]

    @Test(arguments: 0..<expected.count)
    func sweepCatchesInjectedBug(_ case_: Int) {
        let (bug, nodes, properties) = Self.expected[case_]
        Self.expectCaught(bug.rawValue, nodes: nodes, by: properties) { $0.injectedBug = bug }
    }

    /// The replica driver's ordering, the server's too: a member that
    /// acknowledges appends and grants votes before its disk made them
    /// durable (`ReplicaBug.acknowledgesBeforePersist`) can take back,
    /// in a crash, a promise a leader or a candidate already counted.
    @Test func sweepCatchesAcknowledgingBeforePersist() {
        let bug = ReplicaBug.acknowledgesBeforePersist
        Self.expectCaught(bug.rawValue, nodes: 3, by: [.electionSafety, .leaderCompleteness, .stateMachineSafety, .logMatching]) {
            $0.injectedReplicaBug = bug
        }
    }

    /// Each of the Multi-Paxos core's injected bugs, caught on the Paxos
    /// simulator by the checker meant for it.
    @Test(arguments: PaxosBug.allCases)
    func sweepCatchesInjectedPaxosBug(_ bug: PaxosBug) {
        let properties: Set<SafetyViolation.Property> = switch bug {
        case .acceptBelowPromise, .skipRecovery: [.chosenOnce, .stateMachineSafety, .linearizability]
        case .readWithoutConfirmation: [.linearizability]
        }
        Self.expectCaught(bug.rawValue, nodes: 3, engine: .paxos, by: properties) { $0.injectedPaxosBug = bug }
    }

    /// The replica driver's ordering bug on Paxos: an acceptor that answers
    /// before its promise or acceptance is durable can lose, in a crash,
    /// one a proposer already counted. Or it stays behind for good: a
    /// leader sends an acceptor only what it has not acknowledged, so a
    /// member that lost acknowledged slots never gets them again and the
    /// liveness check sees it (seed 2 since membership changes run on Paxos).
    @Test func paxosSweepCatchesAcknowledgingBeforePersist() {
        let bug = ReplicaBug.acknowledgesBeforePersist
        Self.expectCaught(bug.rawValue, nodes: 3, engine: .paxos, by: [.electionSafety, .chosenOnce, .stateMachineSafety, .linearizability, .liveness]) {
            $0.injectedReplicaBug = bug
        }
    }

    /// The server's state machine, which the simulator runs (its `Applier`
    /// on an `MVCCStore`): a transaction that ignores its compares lets a
    /// compare-and-swap on a stale value succeed, and the linearizability
    /// checker must see it.
    @Test func sweepCatchesAStateMachineBug() {
        let bug = StateMachineBug.txnIgnoresCompares
        Self.expectCaught(bug.rawValue, nodes: 3, by: [.linearizability]) { $0.injectedStateMachineBug = bug }
    }

    /// Sweep seeds 1...`seedsMax` with the bug `inject` switches on; the
    /// first violation must come from one of `properties`.
    static func expectCaught(_ bug: String, nodes: Int, engine: EngineKind = .raft, by properties: Set<SafetyViolation.Property>,
                             inject: (inout SimulationOptions) -> Void) {
        var caught: (seed: UInt64, violation: SafetyViolation)?
        for seed in 1...seedsMax {
            var options = SimulationSweepTests.options(engine, seed: seed, nodes: nodes)
            inject(&options)
            if let violation = Simulator.run(options).violation {
                caught = (seed, violation)
                break
            }
        }
        guard let caught else {
            Issue.record("\(bug) on \(nodes) \(engine) members survived \(seedsMax) seeds: the checkers are blind to it")
            return
        }
        print("bug injection: \(bug) on \(engine) caught at seed \(caught.seed) by \(caught.violation.property.rawValue)")
        #expect(properties.contains(caught.violation.property),
                "\(bug) caught at seed \(caught.seed) by an unexpected check: \(caught.violation)")
    }

    /// The same seeds pass without the bug: what caught it was the bug.
    @Test func sameSeedsPassWithoutBug() {
        for seed in UInt64(1)...20 {
            let report = Simulator.run(SimulationOptions(seed: seed, steps: 5_000, nodes: 3, faults: .all))
            #expect(report.passed, "seed \(seed): \(report.violation.map(\.description) ?? "")")
        }
    }
}
