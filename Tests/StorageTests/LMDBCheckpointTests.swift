import Consensus
import Foundation
@_spi(FaultInjection) import Storage
import Testing

/// `CommitDurability.checkpointed`: commits flush nothing, and a power
/// failure returns the store to its last checkpoint, whole. A real power
/// failure cannot be staged in a test, so these build what one could leave
/// on disk, page by page, from two images of the file: as the checkpoint
/// flushed it, and as the page cache held it at the cut, every page after
/// the checkpoint written or not.
@Suite struct LMDBCheckpointTests {
    static let pageBytes = 4096

    static func settings(forgetToPin: Bool = false) -> MVCCSettings {
        var settings = MVCCSettings()
        settings.commitDurability = .checkpointed
        settings.checkpointInterval = .seconds(60)  // only the test's own checkpoints
        settings.checkpointsForgetToPin = forgetToPin
        return settings
    }

    static func key(_ i: Int) -> [UInt8] { Array("key-\(1000 + i)".utf8) }

    struct State: Equatable {
        var revision: Int64
        var hash: UInt32
        var kvs: [KeyValue]
    }

    static func state(_ store: MVCCStore) throws -> State {
        State(revision: store.currentRevision, hash: try store.hashKV().hash,
              kvs: try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs)
    }

    /// Writes after a checkpoint that overwrite, delete and compact what it
    /// holds, so that pages it references are freed (and, unpinned, reused).
    static func churn(_ store: MVCCStore) throws {
        let value = [UInt8](repeating: 7, count: 300)
        for round in 0..<20 {
            try store.batch { () throws(StorageError) in
                for i in 0..<40 {
                    try store.apply([.put(key: key((round * 37 + i * 11) % 400), value: value + [UInt8(round)], lease: 0)])
                }
            }
            if round % 5 == 4 {
                try store.apply([.deleteRange(key: key(round * 10), rangeEnd: key(round * 10 + 60))])
                try store.compact(to: store.currentRevision - 1)
            }
        }
    }

    /// The store at a checkpoint, the file's bytes then, and the bytes
    /// after `churn` (what the page cache held at the cut).
    static func cut(_ directory: String, forgetToPin: Bool = false) throws -> (State, [UInt8], [UInt8]) {
        let file = directory + "/data.mdb"
        let store = try MVCCStore(directory: directory, settings: settings(forgetToPin: forgetToPin))
        let value = [UInt8](repeating: 5, count: 300)
        for chunk in 0..<8 {
            try store.batch { () throws(StorageError) in
                for i in 0..<50 { try store.apply([.put(key: key(chunk * 50 + i), value: value, lease: 0)]) }
            }
        }
        try store.sync()
        let atCheckpoint = try state(store)
        let flushed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        try churn(store)
        #expect(try state(store) != atCheckpoint)
        let cached = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        store.close()
        return (atCheckpoint, flushed, cached)
    }

    /// Put `bytes` in the data file in place (the same inode, as a power
    /// failure leaves it), without LMDB's lock file.
    static func overwrite(_ directory: String, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data.mdb"))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: bytes)
        try handle.close()
        try? FileManager.default.removeItem(atPath: directory + "/lock.mdb")
    }

    /// Page by page, the flushed page or the cached one, as `pick` says
    /// (pages past the flushed file's end: the cached one or none).
    static func mix(_ flushed: [UInt8], _ cached: [UInt8], _ pick: (Int) -> Bool) -> [UInt8] {
        var out: [UInt8] = []
        let pages = (max(flushed.count, cached.count) + pageBytes - 1) / pageBytes
        for page in 0..<pages {
            let range = page * pageBytes..<(page + 1) * pageBytes
            let useCached = pick(page)
            if useCached && range.upperBound <= cached.count {
                out += cached[range]
            } else if range.upperBound <= flushed.count {
                out += flushed[range]
            } else if range.upperBound <= cached.count {
                out += [UInt8](repeating: 0, count: pageBytes)  // allocated, never written
            }
        }
        return out
    }

    @Test func aCrashOfTheProcessReturnsToTheCheckpointWhole() throws {
        let dir = try TemporaryDirectory()
        let (atCheckpoint, _, cached) = try Self.cut(dir.path)
        // Every page written: what a killed process leaves in the page cache.
        try Self.overwrite(dir.path, with: cached)
        let store = try MVCCStore(directory: dir.path, settings: Self.settings())
        #expect(try Self.state(store) == atCheckpoint)
    }

    @Test(arguments: 1...6) func aPowerFailureReturnsToTheCheckpointWhole(seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        let (atCheckpoint, flushed, cached) = try Self.cut(dir.path)
        var random = DeterministicRandom(seed: seed)
        try Self.overwrite(dir.path, with: Self.mix(flushed, cached) { _ in random.next() % 2 == 0 })
        let store = try MVCCStore(directory: dir.path, settings: Self.settings())
        #expect(try Self.state(store) == atCheckpoint)
        // And it goes on from there: writes, a checkpoint, a reopen.
        try Self.churn(store)
        try store.sync()
        let later = try Self.state(store)
        store.close()
        #expect(try Self.state(MVCCStore(directory: dir.path, settings: Self.settings())) == later)
    }

    /// The checker bites: without the pin, LMDB reuses the checkpoint's
    /// pages for later commits, and the state it flushed is gone.
    @Test func withoutThePinTheCheckpointIsLost() throws {
        let dir = try TemporaryDirectory()
        let (atCheckpoint, _, cached) = try Self.cut(dir.path, forgetToPin: true)
        try Self.overwrite(dir.path, with: cached)
        // Refused as corrupt, or opened at something else: either way not the checkpoint.
        let reopened = try? Self.state(MVCCStore(directory: dir.path, settings: Self.settings()))
        #expect(reopened != atCheckpoint, "the checkpoint survived without its pin: the test shows nothing")
    }

    /// A crash while a checkpoint's slot is written leaves that slot torn;
    /// the other slot, the checkpoint before, whose state is still pinned
    /// until the new slot is durable, is the way back. A torn older slot
    /// changes nothing.
    @Test(arguments: [true, false]) func aTornSlotFallsBackToTheOther(tearNewest: Bool) throws {
        let dir = try TemporaryDirectory()
        let store = try MVCCStore(directory: dir.path, settings: Self.settings())
        try Self.churn(store)
        try store.sync()
        let before = try Self.state(store)
        try Self.churn(store)
        try store.sync()  // the crash comes while this checkpoint's slot is written
        let last = try Self.state(store)
        store.close()
        let path = dir.path + "/data.mdb.checkpoint"
        var file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let slotBytes = file.count / 2
        func sequence(_ slot: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(file[slot * slotBytes + 8 + $1]) << (8 * $1) }
        }
        let newest = sequence(0) > sequence(1) ? 0 : 1
        file[(tearNewest ? newest : 1 - newest) * slotBytes + slotBytes / 2] ^= 0xFF
        try Data(file).write(to: URL(fileURLWithPath: path))
        #expect(try Self.state(MVCCStore(directory: dir.path, settings: Self.settings())) == (tearNewest ? before : last))
    }

    /// A file that replaced the checkpointed one (a snapshot installed, a
    /// defragmentation) is never given the old file's meta pages.
    @Test func aReplacedFileIsNotGivenTheOldFilesMetaPages() throws {
        let dir = try TemporaryDirectory()
        let store = try MVCCStore(directory: dir.path, settings: Self.settings())
        try Self.churn(store)
        try store.defragment()
        let defragmented = try Self.state(store)
        try Self.churn(store)
        try store.sync()
        let later = try Self.state(store)
        store.close()
        #expect(defragmented != later)
        #expect(try Self.state(MVCCStore(directory: dir.path, settings: Self.settings())) == later)
    }
}
