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
        let path = environment.path
        return try environment.read { txn throws(StorageError) in
            var events: [WatchEvent] = []
            try txn.scan(revisionsDB, from: KeyEncoding.revision(main: max(from, 1), sub: 0)) { _, composite throws(StorageError) in
                guard let version = KeyEncoding.parse(composite) else {
                    throw .corrupt(path: path, detail: "undecodable revision index entry")
                }
                // A short slot names its key: skip keys out of range unread.
                if case .short(let key) = version.kind, !range.contains(key) { return true }
                guard let bytes = try txn.get(keysDB, composite), let record = KeyEncoding.decode(composite: composite, record: bytes) else {
                    throw .corrupt(path: path, detail: "revision index names a missing version at revision \(version.main)")
                }
                guard range.contains(record.key) else { return true }
                let kv = record.keyValue
                events.append(WatchEvent(kind: record.tombstone ? .delete : .put, kv: kv))
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
        let path = environment.path
        let hash = try environment.read { txn throws(StorageError) -> UInt32 in
            var crc: UInt32 = 0
            try txn.scan(keysDB, from: []) { composite, record throws(StorageError) in
                guard let version = KeyEncoding.parse(composite) else {
                    throw .corrupt(path: path, detail: "undecodable version key")
                }
                if version.main <= at {
                    crc = CRC32C.checksum(composite, seed: crc)
                    crc = CRC32C.checksum(record, seed: crc)
                }
                return true
            }
            return crc
        }
        return (hash, compactedRevision)
    }
}
