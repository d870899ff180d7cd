import Consensus
@_spi(BugInjection) import MultiPaxos
import Foundation
import Testing

enum ProcessInfoShim {
    /// Where a failing run writes its last events: `PAXOS_TRACE=/tmp/t.txt swift test --filter PaxosSweep`.
    static var traceFile: String? { ProcessInfo.processInfo.environment["PAXOS_TRACE"] }
}

/// Random schedules (reordering, loss, duplication, partitions, crashes,
/// compaction) over 3 and 5 members, checked after every step: members
/// apply the same value in every slot, only proposed commands are chosen,
/// every read index covers every write acknowledged before the read; and
/// once healed, the group commits again. Each injected bug is caught.
@Suite struct PaxosSweepTests {
    static let steps = 3_000

    static func run(seed: UInt64, members: Int, bug: PaxosBug? = nil, entriesTearApart: Bool = false) throws -> (violations: [String], live: Bool, served: Int) {
        var settings = PaxosSettings()
        settings.injectedBug = bug
        if seed % 2 == 0 { settings.readMode = .leaseBased }
        var group = try PaxosCluster(members: members, settings: settings, seed: seed)
        group.entriesTearApart = entriesTearApart
        for _ in 0..<steps {
            try group.randomStep()
            if !group.violations.isEmpty {
                if let path = ProcessInfoShim.traceFile {
                    try? (group.trace + group.violations).joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
                }
                return (group.violations, true, group.readsServed)
            }
        }
        let live = try group.settle()
        return (group.violations, live, group.readsServed)
    }

    @Test(arguments: [3, 5])
    func randomSchedulesKeepEverySafetyPropertyAndRecover(members: Int) throws {
        var served = 0
        for seed in UInt64(1)...60 {
            let result = try Self.run(seed: seed, members: members)
            #expect(result.violations.isEmpty, "seed \(seed): \(result.violations.prefix(3))")
            #expect(result.live, "seed \(seed): no new command committed on every member after healing")
            served += result.served
        }
        print("paxos sweep, \(members) members: \(served) reads served")
        #expect(served > 1_000, "the schedules serve reads")
    }

    /// One seed, one run: the same events, to the last message.
    @Test func aSeedReplaysTheSameRun() throws {
        func trace() throws -> [String] {
            var group = try PaxosCluster(members: 5, seed: 7)
            for _ in 0..<Self.steps { try group.randomStep() }
            return group.trace + ["\(group.chosenByQuorum.count) chosen, \(group.readsServed) reads"]
        }
        let first = try trace()
        #expect(first.count > 100)
        #expect(try trace() == first)
    }

    @Test(arguments: PaxosBug.allCases)
    func everyInjectedBugIsCaughtWithin200Seeds(bug: PaxosBug) throws {
        var caught: UInt64?
        for seed in UInt64(1)...200 {
            let result = try Self.run(seed: seed, members: 3, bug: bug)
            if !result.violations.isEmpty {
                caught = seed
                break
            }
        }
        print("paxos sweep: \(bug) caught at seed \(caught.map(String.init) ?? "none")")
        #expect(caught != nil, "\(bug) went unnoticed for 200 seeds")
    }

    /// The write-ahead log's batch records are what keeps a torn rewrite
    /// from losing acceptances: with each entry its own unit (the format
    /// before them), the checkers see a slot chosen twice or a member
    /// applying another value.
    @Test func tornRewritesWithoutBatchRecordsAreCaught() throws {
        var caught: UInt64?
        for seed in UInt64(1)...600 {
            let violations = try Self.run(seed: seed, members: 3, entriesTearApart: true).violations
            if !violations.isEmpty {
                print("paxos sweep: entries torn apart: \(violations[0])")
                caught = seed
                break
            }
        }
        print("paxos sweep: entries torn apart caught at seed \(caught.map(String.init) ?? "none")")
        #expect(caught != nil, "torn rewrites went unnoticed for 600 seeds")
    }
}
