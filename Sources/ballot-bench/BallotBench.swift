import ArgumentParser

@main
struct BallotBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballot-bench",
        abstract: "Ballot's load generators and benchmarks.",
        subcommands: [RaftCoreBenchmark.self, WALCrashChild.self])
}
