import Consensus
import Foundation
import Storage
import Testing

@Suite struct SnapshotStoreTests {
    static func filled(_ dir: DataDirectory) throws -> MVCCStore {
        let store = try MVCCStore(directory: dir.dbPath)
        for i in 0..<300 {
            try store.apply([.put(key: Array("k\(i % 50)".utf8), value: Array("v\(i)".utf8), lease: 0)], index: LogIndex(UInt64(i + 1)))
        }
        return store
    }

    @Test func saveStreamReceiveRestoreRoundTrip() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        let source = try DataDirectory.open(a.path, clusterID: 7)
        let store = try Self.filled(source)
        let metadata = SnapshotMetadata(index: 300, term: 4, membership: Membership(voters: [1, 2, 3], learners: [4]))
        let snapshots = SnapshotStore(directory: source.snapPath)
        // A store that never recorded what it applied cannot name a snapshot.
        #expect(throws: StorageError.self) { try snapshots.capture(store) }
        try store.recordApplied(metadata)
        var reported = 0
        let saved = try snapshots.capture(store) { done, _ in reported = done }
        #expect(saved.metadata == metadata, "the snapshot is named after the state recorded inside it")
        #expect(reported == saved.size && saved.size > 0)
        #expect(try snapshots.latest() == saved)
        // Writes after the capture are not in it, and it still says 300.
        try store.apply([.put(key: Array("later".utf8), value: [1], lease: 0)], index: 301)

        // Stream it to another member's data directory in small chunks.
        let target = try DataDirectory.open(b.path, clusterID: 7)
        let receiver = try SnapshotStore(directory: target.snapPath).receiver(for: metadata, size: saved.size, checksum: saved.checksum)
        var chunks = 0
        try snapshots.read(saved, chunkBytes: 4096) { bytes, done, total throws(StorageError) in
            chunks += 1
            #expect(done <= total)
            try receiver.append(bytes)
        }
        #expect(chunks > 1)
        let received = try receiver.finish()
        #expect(received.metadata == metadata)
        try SnapshotStore(directory: target.snapPath).restore(received, into: target.dbPath)
        let restored = try MVCCStore(directory: target.dbPath)
        #expect(restored.currentRevision == store.currentRevision - 1)
        #expect(restored.appliedIndex == 300)
        #expect(try restored.appliedState() == metadata)
        let all = RangeRequest(key: [0], rangeEnd: [0])
        #expect(try restored.range(all).kvs == (try store.range(RangeRequest(key: [0], rangeEnd: [0], revision: store.currentRevision - 1))).kvs)
    }

    @Test func damagedSnapshotRefusesAndNamesTheFile() throws {
        let a = try TemporaryDirectory()
        let dir = try DataDirectory.open(a.path, clusterID: 7)
        let store = try Self.filled(dir)
        let snapshots = SnapshotStore(directory: dir.snapPath)
        try store.recordApplied(SnapshotMetadata(index: 300, term: 4, membership: Membership(voters: [1])))
        let saved = try snapshots.capture(store)
        for (path, offset) in [(saved.dataPath, 5000), (saved.metaPath, 10)] {
            let url = URL(fileURLWithPath: path)
            let original = try Data(contentsOf: url)
            var damaged = original
            damaged[offset] ^= 0x04
            try damaged.write(to: url)
            do {
                _ = try snapshots.latest()
                Issue.record("a damaged \(path) was accepted")
            } catch {
                #expect(error.description.contains(path), "\(error)")
            }
            try original.write(to: url)
        }
        #expect(try snapshots.latest() == saved)
        // A stream that does not match what the sender announced is refused
        // and leaves no snapshot behind.
        let other = try TemporaryDirectory()
        let elsewhere = SnapshotStore(directory: other.path)
        let wrongChecksum = try elsewhere.receiver(for: saved.metadata, size: saved.size, checksum: saved.checksum ^ 1)
        try snapshots.read(saved) { bytes, _, _ throws(StorageError) in try wrongChecksum.append(bytes) }
        #expect(throws: StorageError.self) { try wrongChecksum.finish() }
        let tooLong = try elsewhere.receiver(for: saved.metadata, size: 10, checksum: saved.checksum)
        #expect(throws: StorageError.self) { try tooLong.append([UInt8](repeating: 0, count: 11)) }
        tooLong.abandon()
        #expect(try elsewhere.latest() == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: other.path).isEmpty)
    }

    @Test func damagedLMDBHeaderRefusesAndNamesTheFile() throws {
        let a = try TemporaryDirectory()
        let dir = try DataDirectory.open(a.path, clusterID: 7)
        do { _ = try Self.filled(dir) }
        let url = URL(fileURLWithPath: dir.dbPath + "/data.mdb")
        var data = try Data(contentsOf: url)
        for i in 16..<40 { data[i] ^= 0xFF }  // both meta pages' magic and version live up front
        for i in 4096 + 16..<4096 + 40 where i < data.count { data[i] ^= 0xFF }
        try data.write(to: url)
        do {
            _ = try MVCCStore(directory: dir.dbPath)
            Issue.record("a damaged LMDB file opened")
        } catch {
            #expect(error.description.contains("data.mdb"), "\(error)")
        }
    }

    @Test func dataDirectoryBelongsToOneCluster() throws {
        let a = try TemporaryDirectory()
        let dir = try DataDirectory.open(a.path, clusterID: 0xABC)
        for sub in [dir.walPath, dir.snapPath, dir.dbPath] { #expect(FileManager.default.fileExists(atPath: sub)) }
        _ = try DataDirectory.open(a.path, clusterID: 0xABC)
        do {
            _ = try DataDirectory.open(a.path, clusterID: 0xDEF)
            Issue.record("another cluster opened this data directory")
        } catch {
            #expect(error.description.contains("ballot.version"))
            #expect(error.description.contains("0000000000000abc") && error.description.contains("0000000000000def"))
        }
    }
}

@Suite struct QuotaTests {
    /// etcd's NOSPACE behaviour: at the quota, writes are refused with
    /// etcd's message and the alarm persists; reads and deletes still work;
    /// compaction and defragmentation free space, and then it can be disarmed.
    @Test func noSpaceAlarmRefusesWritesUntilSpaceIsFreed() throws {
        let dir = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.quotaBytes = 512 << 10
        settings.commitDurability = .none
        var store = try MVCCStore(directory: dir.path, settings: settings)
        let value = [UInt8](repeating: 9, count: 2_000)
        var refused: StorageError?
        for i in 0..<2_000 {
            do { try store.apply([.put(key: Array("k\(i % 40)".utf8), value: value, lease: 0)]) } catch { refused = error; break }
        }
        guard case .noSpace? = refused else {
            Issue.record("the quota was never reached: \(String(describing: refused))")
            return
        }
        #expect(refused?.description == "etcdserver: mvcc: database space exceeded")
        #expect(store.noSpaceAlarm)
        let revision = store.currentRevision
        // Reads and deletes still work; puts (alone or in a txn) do not.
        #expect(try store.range(RangeRequest(key: Array("k1".utf8))).count == 1)
        #expect(throws: StorageError.self) { try store.txn(TxnRequest(success: [.put(key: [1], value: [1], lease: 0)])) }
        try store.apply([.deleteRange(key: Array("k3".utf8), rangeEnd: [])])
        // The alarm survives a restart.
        store = try MVCCStore(directory: dir.path, settings: settings)
        #expect(store.noSpaceAlarm)
        #expect(throws: StorageError.self) { try store.disarmNoSpace() }
        try store.compact(to: revision)
        try store.defragment()
        #expect(try store.usedBytes() < settings.quotaBytes / 2)
        try store.disarmNoSpace()
        try store.apply([.put(key: Array("again".utf8), value: value, lease: 0)])
        #expect(try store.range(RangeRequest(key: Array("k1".utf8))).kvs.first?.value == value, "defragmentation loses nothing live")
    }
}

extension SnapshotStoreTests {
    @Test func flippedValueByteInLMDBRefusesToOpen() throws {
        let a = try TemporaryDirectory()
        let marker = Array("MARKER-VALUE-0123456789".utf8)
        do {
            let store = try MVCCStore(directory: a.path)
            try store.apply([.put(key: Array("k".utf8), value: marker, lease: 0)])
            try store.apply([.put(key: Array("other".utf8), value: Array("x".utf8), lease: 0)])
        }
        let url = URL(fileURLWithPath: a.path + "/data.mdb")
        var data = try Data(contentsOf: url)
        // LMDB is copy-on-write: stale copies of a page linger in free
        // space. Damage every copy, so the live one is among them.
        var flipped = 0
        var from = data.startIndex
        while let at = data[from...].firstRange(of: Data(marker)) {
            data[at.lowerBound + 7] ^= 0x01
            flipped += 1
            from = at.upperBound
        }
        #expect(flipped > 0, "the value is not in the file as written")
        try data.write(to: url)
        do {
            _ = try MVCCStore(directory: a.path)
            Issue.record("a store with a flipped value byte opened")
        } catch {
            #expect(error.description.contains("data.mdb") && error.description.contains("checksum"), "\(error)")
        }
    }
}
