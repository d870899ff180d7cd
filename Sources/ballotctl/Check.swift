import ArgumentParser
import Client
import Foundation

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the cluster.", subcommands: [Perf.self])

    /// etcdctl's `check perf`: a paced write load for a while, then whether
    /// the cluster kept the pace, its slowest write and the spread of
    /// latencies, each judged as etcdctl judges them.
    struct Perf: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Option(help: "s (150 writes/s, 50 clients), m (1000, 200), l (8000, 500) or xl (15000, 1000).") var load = "s"
        @Option(help: "Seconds of load (etcdctl's is 60).") var seconds = 60
        @Option(help: "The prefix the load writes under (deleted afterwards).") var prefix = "/ballotctl-check-perf/"

        static let loads: [String: (rate: Int, clients: Int)] = ["s": (150, 50), "m": (1_000, 200), "l": (8_000, 500), "xl": (15_000, 1_000)]
        static let slowestLimit = 0.5
        static let stddevLimit = 0.1

        func run() async throws {
            guard let (rate, clients) = Self.loads[load] else { throw ValidationError("--load is s, m, l or xl") }
            guard (1...3_600).contains(seconds) else { throw ValidationError("--seconds is 1 to 3600") }
            try await global.withClient { [self] client in
                let latencies = Locked<[Double]>([])
                let failures = Locked(0)
                let bar = ProgressBar("load", format: { "\($0) s" })
                let start = ContinuousClock.now
                let end = start + .seconds(seconds)
                let interval = Duration.seconds(Double(clients) / Double(rate))
                let value = String(repeating: "v", count: 256)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for c in 0..<clients {
                        group.addTask {
                            var next = start + interval * Double(c) / Double(clients)
                            var n = 0
                            while next < end {
                                try await Task.sleep(until: next)
                                let began = ContinuousClock.now
                                do {
                                    try await client.put("\(prefix)\(c)-\(n % 100)", value)
                                    let took = ContinuousClock.now - began
                                    latencies.withLock { $0.append(Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18) }
                                } catch {
                                    failures.withLock { $0 += 1 }
                                }
                                n += 1
                                next = next + interval
                            }
                        }
                    }
                    group.addTask {
                        while ContinuousClock.now < end {
                            let done = ContinuousClock.now - start
                            bar.update(done: UInt64(done.components.seconds), total: UInt64(seconds))
                            try await Task.sleep(for: .seconds(1))
                        }
                        bar.update(done: UInt64(seconds), total: UInt64(seconds))
                    }
                    try await group.waitForAll()
                }
                bar.finish()
                try await client.delete(prefix, prefix: true)
                let samples = latencies.withLock { $0 }
                let throughput = Double(samples.count) / Double(seconds)
                let slowest = samples.max() ?? 0
                let mean = samples.isEmpty ? 0 : samples.reduce(0, +) / Double(samples.count)
                let stddev = samples.isEmpty ? 0 : (samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count)).squareRoot()
                var ok = true
                func judge(_ pass: Bool, _ text: String) {
                    ok = ok && pass
                    print("\(pass ? "PASS" : "FAIL"): \(text)")
                }
                judge(throughput >= 0.9 * Double(rate), "Throughput is \(Int(throughput)) writes/s")
                judge(slowest < Self.slowestLimit, String(format: "Slowest request took %.6fs", slowest))
                judge(stddev < Self.stddevLimit, String(format: "Stddev is %.6fs", stddev))
                judge(failures.withLock { $0 } == 0, "\(failures.withLock { $0 }) writes failed")
                print(ok ? "PASS" : "FAIL")
                if !ok { throw ExitCode.failure }
            }
        }
    }
}

/// A value shared by the load's tasks.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
