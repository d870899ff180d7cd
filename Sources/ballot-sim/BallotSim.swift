import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Engines
@_spi(BugInjection) import MultiPaxos
@_spi(BugInjection) import Raft
@_spi(BugInjection) import Replica
@_spi(BugInjection) import Simulation
@_spi(BugInjection) import StateMachine

/// Replays one simulation run by seed, or sweeps a range of seeds.
@main
struct BallotSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballot-sim",
        abstract: "Run Ballot's consensus core in the deterministic simulator.",
        discussion: """
            One seed determines a whole run: fault rates, schedule, clients. A failing seed \
            prints the violated property and the last events; rerun it with --seed to replay it exactly.
            Faults: all, none, or a comma-separated list of \(FaultSet.named.map(\.0).joined(separator: ", ")).
            """)

    @Option(help: "Consensus engine to simulate: raft or paxos.")
    var engine = "raft"

    @Option(help: "Run this one seed and print its parameters and summary.")
    var seed: UInt64?

    @Option(help: "Sweep seeds A..B (inclusive); print a line per failing seed and a summary.")
    var seeds: String?

    @Option(help: "Steps (units of simulated time) of the faulty phase of each run.")
    var steps = SimulationOptions.stepsDefault

    @Option(help: "Members in the founding configuration: 1, 3, 5 or 7.")
    var nodes = 3

    @Option(help: "Faults to inject.")
    var faults = "all"

    @Option(help: "Inject a known bug to watch the checkers catch it: \(Self.knownBugs.joined(separator: ", ")).")
    var injectBug: String?

    @Option(help: "Events shown before a failure.")
    var trace = SimulationOptions.traceLengthDefault

    @Flag(help: "With --seed: print the last --trace events even when the run passes.")
    var dumpTrace = false

    @Flag(help: "In a sweep, print every seed's summary, not only failures.")
    var verbose = false

    /// The bugs `--inject-bug` knows: the Raft core's, the Multi-Paxos core's, the replica driver's and the state machine's.
    static var knownBugs: [String] {
        InjectedBug.allCases.map(\.rawValue) + PaxosBug.allCases.map(\.rawValue) + ReplicaBug.allCases.map(\.rawValue)
            + StateMachineBug.allCases.map(\.rawValue)
    }

    mutating func run() throws {
        guard let engineKind = EngineKind(rawValue: engine) else {
            throw ValidationError("unknown engine '\(engine)'; use raft or paxos")
        }
        let faultSet: FaultSet
        do { faultSet = try FaultSet(parsing: faults) } catch { throw ValidationError(error.description) }
        var bug: InjectedBug?
        var replicaBug: ReplicaBug?
        var stateMachineBug: StateMachineBug?
        var paxosBug: PaxosBug?
        if let name = injectBug {
            bug = InjectedBug(rawValue: name)
            paxosBug = PaxosBug(rawValue: name)
            replicaBug = ReplicaBug(rawValue: name)
            stateMachineBug = StateMachineBug(rawValue: name)
            guard bug != nil || paxosBug != nil || replicaBug != nil || stateMachineBug != nil else {
                throw ValidationError("unknown bug '\(name)'; known: \(Self.knownBugs.joined(separator: ", "))")
            }
            if (bug != nil && engineKind != .raft) || (paxosBug != nil && engineKind != .paxos) {
                throw ValidationError("bug '\(name)' is in the other engine's core; use --engine \(bug != nil ? "raft" : "paxos")")
            }
        }
        func options(_ s: UInt64) throws -> SimulationOptions {
            var o = SimulationOptions(seed: s, steps: steps, nodes: nodes, faults: faultSet)
            o.engine = engineKind
            o.injectedBug = bug
            o.injectedPaxosBug = paxosBug
            o.injectedReplicaBug = replicaBug
            o.injectedStateMachineBug = stateMachineBug
            o.traceLength = trace
            o.keepTrace = dumpTrace
            do { return try o.validated() } catch { throw ValidationError(error.description) }
        }
        if let seed {
            let report = Simulator.run(try options(seed))
            print(report.parameters)
            if !report.passed { print(Self.failureText(report)) } else if dumpTrace { print(report.trace.joined(separator: "\n")) }
            print(report.summary)
            if !report.passed { throw ExitCode(1) }
            return
        }
        guard let seeds else { throw ValidationError("give --seed S or --seeds A..B") }
        let parts = seeds.split(separator: ".", omittingEmptySubsequences: true)
        guard parts.count == 2, let first = UInt64(parts[0]), let last = UInt64(parts[1]), first <= last else {
            throw ValidationError("--seeds takes A..B with A <= B, e.g. 1..1000")
        }
        var failed = 0
        var passed = 0
        let total = last - first + 1
        for s in first...last {
            let report = Simulator.run(try options(s))
            if report.passed {
                passed += 1
                if verbose { print(report.summary); fflush(nil) }
            } else {
                failed += 1
                fflush(nil)
                print("FAIL seed \(s): \(report.violation!) (replay: ballot-sim --engine \(engineKind) --seed \(s) --steps \(steps) --nodes \(nodes) --faults \(faultSet)\(injectBug.map { " --inject-bug \($0)" } ?? ""))")
            }
            let done = s - first + 1
            if !verbose && done % 100 == 0 && done < total {
                print("progress: \(done)/\(total) seeds, \(failed) failed")
                fflush(nil)
            }
        }
        print("ballot-sim: \(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }

    static func failureText(_ report: SimulationReport) -> String {
        "last events:\n" + report.trace.map { "  " + $0 }.joined(separator: "\n") + "\n\(report.violation!)"
    }
}
