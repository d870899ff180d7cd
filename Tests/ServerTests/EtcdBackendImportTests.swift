import Consensus
import Foundation
import Storage
import Testing
@testable import Server

/// A backup written as etcd's backend (`EtcdBackendSnapshot`) and imported
/// into an empty store (`EtcdBackendImport`) is the same store: the same
/// versions under the same revisions, tombstones, leases and compaction.
@Suite struct EtcdBackendImportTests {
    @Test func aSnapshotImportsIntoTheSameStore() throws {
        let root = NSTemporaryDirectory() + "ballot-import-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for dir in ["a", "b"] { try FileManager.default.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        var settings = MVCCSettings()
        settings.keyBytesMax = 1 << 20
        let original = try MVCCStore(directory: "\(root)/a", settings: settings)
        try original.grantLease(LeaseRecord(id: 77, ttl: 600))
        for i in 0..<25_000 {
            // Long keys (past LMDB's key limit), binary keys, leases, a txn of many.
            let key = i % 1000 == 0 ? Array(repeating: UInt8(i % 256), count: 2_000) : Array("k/\(i % 3_000)".utf8) + [0, UInt8(i % 5)]
            try original.apply([.put(key: key, value: Array("v\(i)".utf8), lease: i % 10 == 0 ? 77 : 0)])
        }
        try original.apply((0..<50).map { .put(key: Array("txn/\($0)".utf8), value: [1], lease: 0) })
        try original.apply([.deleteRange(key: Array("k/1".utf8), rangeEnd: Array("k/2".utf8))])
        try original.compact(to: 20_000)
        try original.apply([.put(key: Array("after".utf8), value: [2], lease: 0)])

        let file = "\(root)/backup.db"
        _ = try EtcdBackendSnapshot.write(original, to: file, alarmMember: 1)
        let copy = try MVCCStore(directory: "\(root)/b", settings: settings)
        let state = SnapshotMetadata(index: LogIndex(1), term: Term(1), membership: Membership(voters: [NodeID(5)]))
        let summary = try EtcdBackendImport.run(backend: file, into: copy, state: state)

        #expect(summary.revision == original.currentRevision)
        #expect(summary.compactedRevision == 20_000)
        #expect(summary.leases == 1)
        #expect(try copy.appliedState() == state && copy.importAwaitsLog())
        #expect(copy.currentRevision == original.currentRevision)
        #expect(copy.compactedRevision == original.compactedRevision)
        func versions(_ store: MVCCStore) throws -> [String] {
            var all: [String] = []
            let rest = try store.export { v in all.append("\(v.main)_\(v.sub) \(v.tombstone) \(v.kv)") }
            all.append("leases \(rest.leases)")
            return all
        }
        let expected = try versions(original)
        #expect(expected.count > 3_000)
        #expect(try versions(copy) == expected)
        let everything = RangeRequest(key: [0], rangeEnd: [0])
        #expect(try copy.range(everything).kvs == original.range(everything).kvs)
        #expect(throws: StorageError.self) { try copy.range(RangeRequest(key: Array("k/5".utf8), revision: 19_999)) }

        // An import needs an empty store.
        #expect(throws: StorageError.self) { try EtcdBackendImport.run(backend: file, into: copy, state: state) }
    }
}
