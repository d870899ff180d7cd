import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Takes an etcd 3.4 backend (a bbolt file: an `etcdctl snapshot save`
/// backup, a Ballot snapshot, or an etcd member's `member/snap/db`) into an
/// empty `MVCCStore`: every version under its revision, the leases, the
/// compaction. The layout read is the one `EtcdBackendSnapshot` writes
/// (etcd's mvcc/kvstore.go, lease/lessor.go).
public enum EtcdBackendImport {
    /// What was taken over.
    public struct Summary: Sendable, Equatable {
        /// The backend's consistent index: the etcd log index it applied through.
        public var consistentIndex: UInt64
        public var revision: Int64
        public var compactedRevision: Int64
        public var versions: Int
        public var leases: Int
    }

    /// The meta bucket: how far the backend applied etcd's log, and the
    /// compaction (one scheduled but not finished is finished by the
    /// import, as etcd finishes it when it opens the backend).
    public struct Meta: Sendable {
        public var consistentIndex: UInt64
        public var compactedRevision: Int64

        public init(backend path: String) throws(StorageError) { try self.init(try BoltFileReader(path: path)) }

        init(_ bolt: BoltFileReader) throws(StorageError) {
            var meta: [String: [UInt8]] = [:]
            let found = try bolt.forEach(inBucket: Array("meta".utf8)) { key, value throws(StorageError) in
                meta[String(decoding: key, as: UTF8.self)] = value
            }
            guard found else { throw .corrupt(path: bolt.path, detail: "a bbolt file without etcd's meta bucket (not an etcd backend)") }
            func revisionMain(_ bytes: [UInt8]?) throws(StorageError) -> Int64 {
                guard let bytes else { return 0 }
                guard bytes.count >= 8 else { throw .corrupt(path: bolt.path, detail: "a revision of \(bytes.count) bytes in the meta bucket") }
                return KeyEncoding.int64(bytes, at: 0)
            }
            consistentIndex = UInt64(bitPattern: try revisionMain(meta["consistent_index"]))
            compactedRevision = max(try revisionMain(meta["finishedCompactRev"]), try revisionMain(meta["scheduledCompactRev"]))
        }
    }

    /// Versions written per LMDB transaction (bounds a transaction's dirty pages).
    public static let batchVersions = 10_000

    /// Reads `backend` into `store`, which must be empty; then redoes the
    /// lease grants and compactions `redo` lists (from the etcd log, after
    /// the backend's consistent index: see `EtcdWALSummary`); records the
    /// data as the snapshot `state` (`MVCCStore.finishImport`); `progress`
    /// sees the versions done so far.
    public static func run(backend path: String, into store: MVCCStore, state: SnapshotMetadata, redo: [EtcdWALSummary.Request] = [],
                           progress: (Int) -> Void = { _ in }) throws(StorageError) -> Summary {
        guard store.currentRevision == MVCCStore.firstRevision, store.compactedRevision == 0 else {
            throw .corrupt(path: store.directory, detail: "an import needs an empty store; this one is at revision \(store.currentRevision)")
        }
        let bolt = try BoltFileReader(path: path)
        let buckets = Set(try bolt.bucketNames())
        guard buckets.contains(Array("key".utf8)), buckets.contains(Array("meta".utf8)) else {
            throw .corrupt(path: path, detail: "a bbolt file without etcd's key and meta buckets (not an etcd backend)")
        }

        let meta = try Meta(bolt)
        let (consistentIndex, compacted) = (meta.consistentIndex, meta.compactedRevision)

        var batch: [ExportedVersion] = []
        var versions = 0
        var newest = MVCCStore.firstRevision
        try bolt.forEach(inBucket: Array("key".utf8)) { key, value throws(StorageError) in
            guard key.count == 17 || (key.count == 18 && key[17] == UInt8(ascii: "t")), key[8] == UInt8(ascii: "_") else {
                throw .corrupt(path: path, detail: "a key-bucket entry whose key is not a revision (\(key.count) bytes)")
            }
            let main = KeyEncoding.int64(key, at: 0), sub = KeyEncoding.int64(key, at: 9)
            guard let kv = ProtoWire(value[...]) else { throw .corrupt(path: path, detail: "an undecodable version at revision \(main)") }
            let tombstone = key.count == 18
            let version = KeyValue(
                key: kv.data(1), value: kv.data(5), createRevision: kv.int64(2), modRevision: main,
                version: kv.int64(4), lease: kv.int64(6))
            batch.append(ExportedVersion(main: main, sub: sub, tombstone: tombstone, kv: version))
            newest = max(newest, main)
            versions += 1
            if batch.count == batchVersions {
                try store.importVersions(batch)
                batch.removeAll(keepingCapacity: true)
                progress(versions)
            }
        }
        try store.importVersions(batch)
        progress(versions)

        var leases = 0
        try bolt.forEach(inBucket: Array("lease".utf8)) { _, value throws(StorageError) in
            guard let lease = ProtoWire(value[...]), lease.int64(1) != 0 else { throw .corrupt(path: path, detail: "an undecodable lease") }
            try store.grantLease(LeaseRecord(id: lease.int64(1), ttl: lease.int64(2)))
            leases += 1
        }
        var compactTo = compacted
        for request in redo {
            switch request {
            case .leaseGrant(let id, let ttl) where id != 0:
                if try store.lease(id) == nil {
                    try store.grantLease(LeaseRecord(id: id, ttl: ttl))
                    leases += 1
                }
            case .compaction(let revision) where revision <= max(newest, compacted):
                compactTo = max(compactTo, revision)  // etcd refuses a future one as it applies it
            default:
                break
            }
        }
        try store.finishImport(currentRevision: max(newest, compacted), compactedRevision: compactTo, state: state)
        return Summary(consistentIndex: consistentIndex, revision: store.currentRevision, compactedRevision: store.compactedRevision,
                       versions: versions, leases: leases)
    }
}
