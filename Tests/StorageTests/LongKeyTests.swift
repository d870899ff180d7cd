import Consensus
import Storage
import Testing

/// Keys of every size etcd takes (up to the request limit), though LMDB
/// refuses keys over 511 bytes: stored, read back, ranged in key order,
/// watched, compacted and reopened.
@Suite struct LongKeyTests {
    static let sizes = [1, 100, 229, 230, 458, 459, 460, 461, 495, 511, 512, 600, 4_096, 65_536]

    /// Keys of each size in three flavours: letters, all zero bytes (each
    /// escapes to two bytes), and letters ending in a varying byte; and one
    /// of a mebibyte, near the default request limit.
    static func keys() -> [[UInt8]] {
        sizes.flatMap { size -> [[UInt8]] in
            [
                [UInt8](repeating: 0x6B, count: size),
                [UInt8](repeating: 0x00, count: size),
                [UInt8](repeating: 0x6B, count: size - 1) + [UInt8(size % 251)],
            ]
        } + [[UInt8](repeating: 0x6B, count: 1 << 20) + [0x00]]
    }

    @Test func everySizeIsStoredRangedWatchedAndCompacted() throws {
        let directory = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.commitDurability = .none
        settings.compactionBatchKeys = 2
        var store = try MVCCStore(directory: directory.path, settings: settings)
        let keys = Self.keys()
        let sorted = Set(keys).sorted { $0.lexicographicallyPrecedes($1) }
        let first = store.currentRevision
        for (i, key) in keys.enumerated() {
            try store.apply([.put(key: key, value: Array("v\(i)".utf8), lease: 0)])
        }
        for (i, key) in keys.enumerated() {
            try store.apply([.put(key: key, value: Array("w\(i)".utf8), lease: 0)])
        }
        func checkAll(_ store: MVCCStore) throws {
            let all = try store.range(RangeRequest(key: [0], rangeEnd: [0]))
            #expect(all.kvs.map(\.key) == sorted, "a full range lists every key once, in key order")
            for (i, key) in keys.enumerated() {
                let got = try store.range(RangeRequest(key: key)).kvs
                #expect(got.count == 1 && got.first?.key == key, "key of \(key.count) bytes")
                #expect(got.first.map { String(decoding: $0.value, as: UTF8.self) } == "w\(keys.lastIndex(of: key)!)")
                #expect(got.first?.version == Int64(2 * keys.filter { $0 == key }.count), "key \(i)")
            }
            // A range that starts and ends inside the long keys.
            let from = [UInt8](repeating: 0x6B, count: 500), to = [UInt8](repeating: 0x6B, count: 5_000)
            let middle = try store.range(RangeRequest(key: from, rangeEnd: to)).kvs.map(\.key)
            #expect(middle == sorted.filter { !$0.lexicographicallyPrecedes(from) && $0.lexicographicallyPrecedes(to) })
            #expect(!middle.isEmpty)
        }
        try checkAll(store)
        let events = try store.events(from: first + 1, range: RangeRequest(key: [0], rangeEnd: [0]))
        #expect(events.count == 2 * keys.count)
        #expect(events.map(\.kv.key) == keys + keys, "the watch feed names every key whole, in revision order")
        try store.compact(to: store.currentRevision)
        try checkAll(store)
        #expect(try store.events(from: store.currentRevision + 1, range: RangeRequest(key: [0], rangeEnd: [0])).isEmpty)
        store = try MVCCStore(directory: directory.path, settings: settings)
        try checkAll(store)
        let deleted = try store.apply([.deleteRange(key: [0], rangeEnd: [0])])
        #expect(deleted.outcomes == [.deleted(try store.range(RangeRequest(key: [0], rangeEnd: [0], revision: deleted.revision - 1)).kvs)])
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs.isEmpty)
        try store.compact(to: store.currentRevision)
        store = try MVCCStore(directory: directory.path, settings: settings)
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0], countOnly: true)).count == 0)
    }

    @Test func aKeyOverTheLimitIsRefusedNotStored() throws {
        let directory = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.keyBytesMax = 1_000
        let store = try MVCCStore(directory: directory.path, settings: settings)
        let key = [UInt8](repeating: 1, count: 1_001)
        #expect(throws: StorageError.keyTooLarge(bytes: 1_001, limit: 1_000)) { try store.apply([.put(key: key, value: [], lease: 0)]) }
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs.isEmpty)
    }
}
