import Foundation
@testable import Storage
import Testing

/// The store's file layout: versions keyed by revision, the key index
/// rebuilt from them at open, an older layout refused with what to do.
@Suite struct StoreLayoutTests {
    /// A file of layout 1 (versions under their keys in a `keys` database,
    /// no layout mark) is refused, never read as if it were empty.
    @Test func anOlderLayoutIsRefusedWithWhatToDo() throws {
        let directory = try TemporaryDirectory()
        do {
            let old = try LMDBEnvironment(directory: directory.path, mapSizeBytes: 1 << 24, databaseNames: ["keys", "revisions", "meta"])
            try old.write { txn throws(StorageError) in
                try txn.put(old.databases["meta"]!, MVCCStore.currentKey, KeyEncoding.bigEndian(7))
            }
            old.close()
        }
        #expect(throws: StorageError.olderLayout(path: directory.path + "/data.mdb", found: 1, expected: 2)) {
            _ = try MVCCStore(directory: directory.path)
        }
        #expect("\(StorageError.olderLayout(path: "x", found: 1, expected: 2))".contains("etcdctl snapshot save"))
    }

    /// The key index comes back from the records: reads at every revision
    /// kept, ranges in key order, and versions and create revisions that
    /// continue where they stopped.
    @Test func theKeyIndexIsRebuiltFromTheRecords() throws {
        let directory = try TemporaryDirectory()
        var expected: [Int64: RangeResult] = [:]
        do {
            let store = try MVCCStore(directory: directory.path)
            for round in 0..<50 {
                let key = Array("k\(round % 7)".utf8)
                if round % 5 == 4 {
                    try store.apply([.deleteRange(key: key, rangeEnd: [])])
                } else {
                    try store.apply([.put(key: key, value: Array("v\(round)".utf8), lease: 0)])
                }
                expected[store.currentRevision] = try store.range(RangeRequest(key: [0], rangeEnd: [0]))
            }
        }
        let reopened = try MVCCStore(directory: directory.path)
        for (revision, result) in expected {
            var request = RangeRequest(key: [0], rangeEnd: [0], revision: revision)
            var got = try reopened.range(request)
            got.revision = result.revision
            #expect(got.kvs == result.kvs, "at revision \(revision)")
            request.countOnly = true
            #expect(try reopened.range(request).count == result.kvs.count)
        }
        let before = try reopened.range(RangeRequest(key: Array("k1".utf8))).kvs.first
        try reopened.apply([.put(key: Array("k1".utf8), value: [1], lease: 0)])
        let after = try #require(try reopened.range(RangeRequest(key: Array("k1".utf8))).kvs.first)
        #expect(after.version == (before?.version ?? 0) + 1)
        #expect(after.createRevision == (before?.createRevision ?? after.modRevision))
    }

    /// A compaction cut short (its target recorded, no record deleted yet)
    /// is finished when the store opens: only what a read at the target
    /// or later can see stays.
    @Test func anInterruptedCompactionIsFinishedAtOpen() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try MVCCStore(directory: directory.path)
            try store.apply([.put(key: [1], value: [1], lease: 0)])  // 2
            try store.apply([.put(key: [1], value: [2], lease: 0)])  // 3
            try store.apply([.put(key: [2], value: [1], lease: 0)])  // 4
            try store.apply([.deleteRange(key: [2], rangeEnd: [])])  // 5
            try store.apply([.put(key: [3], value: [1], lease: 0)])  // 6
            try store.beginCompaction(to: 5)
        }
        let reopened = try MVCCStore(directory: directory.path)
        var kept: [Int64] = []
        _ = try reopened.export { version throws(StorageError) in kept.append(version.main) }
        #expect(kept == [3, 6])
        #expect(try reopened.range(RangeRequest(key: [0], rangeEnd: [0])).kvs.map(\.key) == [[1], [3]])
        #expect(reopened.compactionCursor == nil)
    }
}

/// A compaction inside a batch that then aborts (a member that then stops,
/// its store reopened from the file): the undo log forgets the versions
/// compaction took and takes back the rest, with no trap.
@Suite struct BatchCompactionTests {
    @Test func anAbortedBatchAfterACompactionUndoesWhatIsLeft() throws {
        let directory = try TemporaryDirectory()
        let store = try MVCCStore(directory: directory.path)
        try store.apply([.put(key: [1], value: [1], lease: 0)])  // 2
        try store.openBatch()
        try store.apply([.put(key: [1], value: [2], lease: 0)])  // 3
        try store.apply([.put(key: [2], value: [1], lease: 0)])  // 4
        try store.beginCompaction(to: 3)
        try store.apply([.put(key: [2], value: [2], lease: 0)])  // 5
        store.abortBatch()
        #expect(store.index.checkInvariants())
        #expect(store.index.versions(of: [2]) == nil, "the batch's new key is gone")
        #expect(store.currentRevision == 2)
    }
}
