@_spi(BugInjection) import Raft
@_spi(BugInjection) import Simulation
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
    ]

    @Test(arguments: 0..<expected.count)
    func sweepCatchesInjectedBug(_ case_: Int) {
        let (bug, nodes, properties) = Self.expected[case_]
        var caught: (seed: UInt64, violation: SafetyViolation)?
        for seed in 1...Self.seedsMax {
            var options = SimulationOptions(seed: seed, steps: 5_000, nodes: nodes, faults: .all)
            options.injectedBug = bug
            if let violation = Simulator.run(options).violation {
                caught = (seed, violation)
                break
            }
        }
        guard let caught else {
            Issue.record("\(bug.rawValue) on \(nodes) members survived \(Self.seedsMax) seeds: the checkers are blind to it")
            return
        }
        #expect(properties.contains(caught.violation.property),
                "\(bug.rawValue) caught at seed \(caught.seed) by an unexpected check: \(caught.violation)")
    }

    /// The same seeds pass without the bug: what caught it was the bug.
    @Test func sameSeedsPassWithoutBug() {
        for seed in UInt64(1)...20 {
            let report = Simulator.run(SimulationOptions(seed: seed, steps: 5_000, nodes: 3, faults: .all))
            #expect(report.passed, "seed \(seed): \(report.violation.map(\.description) ?? "")")
        }
    }
}
