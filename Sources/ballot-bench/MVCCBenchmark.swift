import ArgumentParser
import Foundation
import Storage

/// MVCC store operations per second on LMDB: puts (with and without an
/// fsync per LMDB commit), point reads and range reads.
struct MVCCBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mvcc", abstract: "MVCC put and range throughput on LMDB.")

    @Option(help: "Directory on the disk to measure (created and emptied).") var dir = "/tmp/ballot-bench-mvcc"
    @Option(help: "Distinct keys.") var keys = 10_000
    @Option(help: "Value bytes.") var valueBytes = 256
    @Option(help: "Seconds per measurement.") var seconds = 3.0

    func run() throws {
        for durability in [CommitDurability.full, .dataOnly, .checkpointed, .none] {
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var settings = MVCCSettings()
            settings.commitDurability = durability
            let store = try MVCCStore(directory: dir, settings: settings)
            let value = [UInt8](repeating: 3, count: valueBytes)
            func key(_ i: Int) -> [UInt8] { Array("key-\(100_000_000 + i)".utf8) }
            let puts = try rate { i in
                try store.apply([.put(key: key(i % keys), value: value, lease: 0)])
                try store.checkpointIfDue()
            }
            let flushes = switch durability {
            case .full: "data and meta page synced per commit"
            case .dataOnly: "data synced per commit, meta page with the next"
            case .checkpointed: "nothing synced per commit, a checkpoint every \(settings.checkpointInterval) (the server's)"
            case .none: "no fsync"
            }
            print("put (one revision per put, \(flushes)): \(Int(puts)) ops/s")
            fflush(nil)
            if durability != .none { continue }
            var random = SystemRandomNumberGenerator()
            let gets = try rate { _ in _ = try store.range(RangeRequest(key: key(Int.random(in: 0..<keys, using: &random)))) }
            print("range, one key (\(store.currentRevision) revisions stored): \(Int(gets)) ops/s")
            let ranges = try rate { _ in
                let start = Int.random(in: 0..<(keys - 100), using: &random)
                _ = try store.range(RangeRequest(key: key(start), rangeEnd: key(start + 100)))
            }
            print("range, 100 keys: \(Int(ranges)) ops/s")
            fflush(nil)
        }
    }

    func rate(_ body: (Int) throws -> Void) throws -> Double {
        let start = Date()
        var n = 0
        while n % 256 != 0 || Date().timeIntervalSince(start) < seconds {
            try body(n)
            n += 1
        }
        return Double(n) / Date().timeIntervalSince(start)
    }
}
