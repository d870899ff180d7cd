import ArgumentParser
import Consensus
@_spi(FaultInjection) import Storage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The child process of the WAL crash tests: appends deterministic entries
/// in batches and prints `acked N` after each sync returns, until killed.
/// Entry content depends only on (seed, index), so the parent can tell a
/// recovered entry from an invented one.
struct WALCrashChild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-crash-child", abstract: "Test helper: write through the WAL until killed.", shouldDisplay: false)

    @Option var dir: String
    @Option(help: "Also apply each acknowledged batch to an MVCC store here, as a node loop does.") var db: String?
    @Option var seed: UInt64
    @Option var segmentBytes = WALSettings.segmentBytesRange.lowerBound
    @Option var batchMax = 8
    @Option(help: "Tear the write of this batch (test-only switch), then exit 86.") var tearAtBatch: Int?
    @Option var tearBytes = 5

    static func payload(seed: UInt64, index: LogIndex) -> [UInt8] {
        var random = DeterministicRandom(seed: seed &* 31 &+ index.rawValue)
        let filler = Int.random(in: 0...600, using: &random)
        return Array("s\(seed)-i\(index)-".utf8) + [UInt8](repeating: UInt8(truncatingIfNeeded: index.rawValue), count: filler)
    }

    /// One revision per entry, with the entry's index in the same LMDB transaction.
    static func apply(_ entry: Entry, to store: MVCCStore) throws {
        guard case .command(let bytes) = entry.payload else { return }
        try store.apply([.put(key: Array("k\(entry.index.rawValue % 37)".utf8), value: bytes, lease: 0)], index: entry.index)
    }

    func run() throws {
        var settings = WALSettings()
        settings.segmentBytes = segmentBytes
        let (wal, recovery) = try WriteAheadLog.open(directory: dir, settings: settings)
        var last = recovery.entries.last?.index ?? recovery.snapshot?.index ?? .zero
        var store: MVCCStore?
        if let db {
            var mvcc = MVCCSettings()
            mvcc.commitDurability = .none  // the WAL is the durability point
            let opened = try MVCCStore(directory: db, settings: mvcc)
            // Catch up with what the log holds beyond the store, as a restart does.
            for entry in recovery.entries where entry.index > opened.appliedIndex { try Self.apply(entry, to: opened) }
            store = opened
        }
        var random = DeterministicRandom(seed: seed ^ last.rawValue)
        var batch = 0
        while true {
            let count = Int.random(in: 1...batchMax, using: &random)
            let entries = (1...count).map { i in
                let index = last + UInt64(i)
                return Entry(term: 1, index: index, payload: .command(Self.payload(seed: seed, index: index)))
            }
            last = last + UInt64(count)
            try wal.append(hardState: HardState(term: 1, vote: nil, commit: last), entries: entries)
            if batch == tearAtBatch { wal.tearNextSyncAfterBytes = tearBytes }
            try wal.sync()
            print("acked \(last)")
            fflush(nil)
            if let store { for entry in entries { try Self.apply(entry, to: store) } }
            batch += 1
        }
    }
}
