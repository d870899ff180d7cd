import ArgumentParser

@main
struct BallotBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballot-bench",
        abstract: "Ballot's load generators and benchmarks.",
        subcommands: [RaftCoreBenchmark.self, WALBenchmark.self, MVCCBenchmark.self, EtcdLoadBenchmark.self, TransportBenchmark.self, WALCrashChild.self])
}
