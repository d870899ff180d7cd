import Consensus
import Foundation
import Storage
import Testing

/// Real processes, real files, real SIGKILL: a child writes through the WAL
/// and is killed at seeded points (some of them mid-record, through a
/// test-only switch that tears the write). After each kill, everything the
/// child saw synced must be there, and nothing it did not write.
@Suite struct WALCrashTests {
    static let killPoints = 200
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/ballot-bench").path

    /// The same function the child uses, restated here so a bug in one is not hidden by the other.
    static func payload(seed: UInt64, index: LogIndex) -> [UInt8] {
        var random = DeterministicRandom(seed: seed &* 31 &+ index.rawValue)
        let filler = Int.random(in: 0...600, using: &random)
        return Array("s\(seed)-i\(index)-".utf8) + [UInt8](repeating: UInt8(truncatingIfNeeded: index.rawValue), count: filler)
    }

    @Test(arguments: 0..<4)
    func acknowledgedWritesSurviveSigkill(group: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("\(Self.binary) is missing: build with `swift build --build-tests` (scripts/test.sh does)")
            return
        }
        let seed = UInt64(1000 + group)
        let dir = try TemporaryDirectory()
        var random = DeterministicRandom(seed: seed)
        var acked: UInt64 = 0
        var tornRuns = 0
        var tailsCut = 0
        for point in 0..<(Self.killPoints / 4) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            var arguments = ["wal-crash-child", "--dir", dir.path + "/wal", "--db", dir.path, "--seed", String(seed), "--segment-bytes", "65536"]
            let tear = point % 5 == 4
            let ackTarget = Int.random(in: 1...12, using: &random)
            if tear {
                arguments += ["--tear-at-batch", String(ackTarget), "--tear-bytes", String(Int.random(in: 1...400, using: &random))]
                tornRuns += 1
            }
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            var seen = 0
            var buffer = ""
            // Read acknowledgements until the target, then kill at a random moment.
            while seen < ackTarget {
                let data = pipe.fileHandleForReading.availableData
                if data.isEmpty { break }  // the child exited (a torn write ends it)
                buffer += String(decoding: data, as: UTF8.self)
                while let newline = buffer.firstIndex(of: "\n") {
                    let line = buffer[..<newline]
                    buffer = String(buffer[buffer.index(after: newline)...])
                    if line.hasPrefix("acked "), let n = UInt64(line.dropFirst(6)) {
                        acked = max(acked, n)
                        seen += 1
                    }
                }
            }
            usleep(UInt32.random(in: 0...3_000, using: &random))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let (_, recovery) = try WriteAheadLog.open(directory: dir.path + "/wal", settings: {
                var s = WALSettings()
                s.segmentBytes = 65536
                return s
            }())
            if recovery.truncatedTail != nil { tailsCut += 1 }
            let last = recovery.entries.last?.index.rawValue ?? 0
            #expect(last >= acked, "kill point \(point): acked through \(acked) but only \(last) recovered")
            for (offset, entry) in recovery.entries.enumerated() {
                #expect(entry.index.rawValue == UInt64(offset + 1), "kill point \(point): gap at \(entry.index)")
                #expect(entry.payload == .command(Self.payload(seed: seed, index: entry.index)), "kill point \(point): entry \(entry.index) was never written")
            }
            #expect(recovery.hardState.commit.rawValue <= last)
            // The store never runs ahead of the log, and replaying the log's
            // tail applies each entry exactly once.
            let store = try MVCCStore(directory: dir.path)
            #expect(store.appliedIndex.rawValue <= last, "kill point \(point): store applied \(store.appliedIndex) past the log's \(last)")
            // One revision per entry, after etcd's first revision (1).
            #expect(store.currentRevision == Int64(store.appliedIndex.rawValue) + MVCCStore.firstRevision, "kill point \(point): an entry was applied twice or skipped")
            for entry in recovery.entries where entry.index > store.appliedIndex {
                guard case .command(let bytes) = entry.payload else { continue }
                try store.apply([.put(key: Array("k\(entry.index.rawValue % 37)".utf8), value: bytes, lease: 0)], index: entry.index)
            }
            #expect(store.currentRevision == Int64(last) + MVCCStore.firstRevision)
            for k in UInt64(0)..<37 {
                // The newest index with this key: what the store must hold.
                var i = last
                while i > 0 && i % 37 != k { i -= 1 }
                let got = try store.range(RangeRequest(key: Array("k\(k)".utf8))).kvs.first?.value
                #expect(got == (i > 0 ? Self.payload(seed: seed, index: LogIndex(i)) : nil), "kill point \(point): key k\(k)")
            }
        }
        #expect(acked > 100, "the children must have made progress")
        #expect(tornRuns == Self.killPoints / 4 / 5)
        #expect(tailsCut > 0, "torn writes must show up as cut tails")
    }
}
