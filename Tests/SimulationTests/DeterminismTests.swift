import Foundation
import Simulation
import Testing

/// One seed must replay one run exactly, in this process and in another:
/// a Set or Dictionary order leaking into a decision would differ between
/// processes (hash seeds are per process) and make failing seeds useless.
@Suite struct DeterminismTests {
    @Test func sameSeedSameRunInProcess() {
        var options = SimulationOptions(seed: 42, steps: 3_000, nodes: 5, faults: .all)
        options.keepTrace = true
        options.traceLength = 5_000
        let a = Simulator.run(options)
        let b = Simulator.run(options)
        #expect(a.summary == b.summary)
        #expect(a.trace == b.trace)
        #expect(a.trace.count > 1_000)
    }

    @Test func sameSeedSameRunAcrossProcesses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let binary = root.appendingPathComponent(".build/debug/ballot-sim")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            Issue.record("\(binary.path) is missing: build with `swift build --build-tests` (scripts/test.sh does)")
            return
        }
        func run() throws -> String {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["--seed", "7", "--steps", "3000", "--nodes", "5", "--dump-trace", "--trace", "3000"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let first = try run()
        let second = try run()
        #expect(first.count > 10_000)
        #expect(first == second)
    }
}
