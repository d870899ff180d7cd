import CLMDB
import Consensus

/// One change, as a watch delivers it.
public struct WatchEvent: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For a delete: the key, with mod revision set to the deleting revision.
    public var kv: KeyValue

    public init(kind: Kind, kv: KeyValue) {
        self.kind = kind
        self.kv = kv
    }

    public var description: String { "\(kind == .put ? "PUT" : "DELETE") \(kv)" }
}

extension MVCCStore {
    /// Changes to keys in `range` from revision `from` on, in revision
    /// order, at most `limit` of them: the feed watches are served from.
    /// Fails with the compacted error if `from` is at or before the
    /// compacted revision's history (as etcd cancels such a watch).
    public func events(from: Int64, range: RangeRequest, limit: Int = 10_000) throws(StorageError) -> [WatchEvent] {
        if from <= compactedRevision && from > 0 && compactedRevision > 0 {
            throw .compacted(requested: from, compacted: compactedRevision)
        }
        let file = directory + "/data.mdb"
        return try environment.read { txn throws(StorageError) in
            var events: [WatchEvent] = []
            try txn.scan(revisionsDB, from: KeyEncoding.revision(main: max(from, 1), sub: 0)) { revision, bytes throws(StorageError) in
                guard let record = KeyEncoding.decode(revision: revision, record: bytes) else {
                    throw .corrupt(path: file, detail: "a version record fails its checksum")
                }
                guard range.contains(record.key) else { return true }
                events.append(WatchEvent(kind: record.tombstone ? .delete : .put, kv: record.keyValue))
                return events.count < limit
            }
            return events
        }
    }

    /// A checksum of every version at or before `revision` still stored:
    /// members that applied the same history agree, so a diverged member
    /// shows (etcd's HashKV). Returns the hash and the compacted revision
    /// it covers from.
    public func hashKV(at revision: Int64? = nil) throws(StorageError) -> (hash: UInt32, compactRevision: Int64) {
        let at = revision ?? currentRevision
        if at < compactedRevision { throw .compacted(requested: at, compacted: compactedRevision) }
        if at > currentRevision { throw .futureRevision(requested: at, current: currentRevision) }
        // Every version at or before `at`, in revision order (etcd hashes
        // its key bucket, also keyed by revision, in that order).
        let hash = try environment.read { txn throws(StorageError) -> UInt32 in
            var crc: UInt32 = 0
            try txn.scan(revisionsDB, from: []) { revision, record throws(StorageError) in
                guard KeyEncoding.int64(revision, at: 0) <= at else { return false }
                crc = CRC32C.checksum(revision, seed: crc)
                crc = CRC32C.checksum(record, seed: crc)
                return true
            }
            return crc
        }
        return (hash, compactedRevision)
    }
}
