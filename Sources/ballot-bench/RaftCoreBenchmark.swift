import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Consensus
import Raft

/// Entries committed per second through in-memory Raft cores: the core's
/// own ceiling, with no disk or network in the way. Every member persists
/// (in memory), applies and acknowledges exactly as the Ready contract says.
struct RaftCoreBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft-core",
        abstract: "Commit throughput of in-memory Raft cores with batched proposals.")

    @Option(help: "Members.") var nodes = 3
    @Option(help: "Entries to commit in total.") var entries = 2_000_000
    @Option(help: "Entries per proposal batch.") var batch = 1_000
    @Option(help: "Payload bytes per entry.") var payload = 128
    @Option(help: "Proposal batches the leader keeps in flight.") var pipeline = 8
    @Option(help: "Measured runs; the median is reported.") var runs = 3

    func validate() throws {
        guard [1, 3, 5, 7].contains(nodes) else { throw ValidationError("--nodes must be 1, 3, 5 or 7") }
        guard entries > 0, batch > 0, batch <= RaftSettings.proposalBatchMaxDefault else {
            throw ValidationError("--batch must be 1...\(RaftSettings.proposalBatchMaxDefault) and --entries positive")
        }
        guard pipeline > 0, runs > 0, payload >= 0 else { throw ValidationError("--pipeline and --runs must be positive") }
    }

    func run() throws {
        print("raft-core: \(nodes) members, \(entries) entries of \(payload) B, batches of \(batch), \(pipeline) in flight, \(runs) runs")
        var rates: [Double] = []
        for r in 1...runs {
            let (committed, seconds) = try measure(label: "run \(r)")
            let rate = Double(committed) / seconds
            rates.append(rate)
            print("run \(r): \(committed) entries committed and applied on every member in \(format(seconds)) s = \(Int(rate)) entries/s")
        }
        rates.sort()
        print("median: \(Int(rates[rates.count / 2])) entries/s")
    }

    func format(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    func measure(label: String) throws -> (Int, Double) {
        var settings = RaftSettings()
        settings.uncommittedBytesMax = RaftSettings.uncommittedBytesMaxLimit
        settings.inflightMessagesMax = 1024
        let ids = (1...UInt64(nodes)).map { NodeID($0) }
        let membership = Membership(voters: Set(ids))
        var cores = try ids.map { try RaftCore(id: $0, bootstrap: membership, settings: settings, seed: 1) }
        var mailbox: [Message] = []
        var applied = Array(repeating: 0, count: nodes)

        func pump() {
            for i in cores.indices where cores[i].hasReady {
                let ready = cores[i].ready()
                mailbox.append(contentsOf: ready.messagesNow)
                mailbox.append(contentsOf: ready.messagesAfterPersist)
                for entry in ready.committed {
                    if case .command = entry.payload { applied[i] += 1 }
                }
                cores[i].advance(ready)
            }
            let batchOfMessages = mailbox
            mailbox.removeAll(keepingCapacity: true)
            for message in batchOfMessages { cores[Int(message.to.rawValue - 1)].step(message) }
        }

        cores[0].campaign()
        for _ in 0..<100 where cores[0].role != .leader || cores[0].hasReady { pump() }
        precondition(cores[0].role == .leader, "member 1 did not win the election")

        let command = [UInt8](repeating: 0x61, count: payload)
        let commands = Array(repeating: command, count: batch)
        var proposed = 0
        let clock = ContinuousClock()
        let start = clock.now
        var lastReport = start
        while applied.min()! < entries {
            // Keep `pipeline` batches beyond the slowest member's apply point.
            while proposed < entries && proposed - applied.min()! < pipeline * batch {
                try cores[0].propose(Array(commands.prefix(min(batch, entries - proposed))))
                proposed += min(batch, entries - proposed)
            }
            pump()
            let now = clock.now
            if now - lastReport > .seconds(1) {
                lastReport = now
                print("  \(label): \(applied.min()!)/\(entries) applied on every member")
                fflush(nil)
            }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return (applied.min()!, seconds)
    }
}
