import Consensus

/// A granted lease as the store keeps it: its ID and granted TTL. When it
/// expires is the leader's business (kept in memory, renewed by keep-alives);
/// only grants and revocations go through consensus, as in etcd.
public struct LeaseRecord: Sendable, Equatable {
    public var id: Int64
    public var ttl: Int64

    public init(id: Int64, ttl: Int64) {
        self.id = id
        self.ttl = ttl
    }
}

extension MVCCStore {
    static let leasePrefix = Array("lease/".utf8)

    static func leaseKey(_ id: Int64) -> [UInt8] { leasePrefix + KeyEncoding.bigEndian(id) }

    /// Record a lease, with `index` applied in the same transaction.
    public func grantLease(_ lease: LeaseRecord, index: LogIndex? = nil) throws(StorageError) {
        if try self.lease(lease.id) != nil { throw .leaseExists }
        try environment.write { txn throws(StorageError) in
            try txn.put(metaDB, Self.leaseKey(lease.id), KeyEncoding.bigEndian(lease.ttl))
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
        }
        if let index { appliedIndex = index }
    }

    /// Delete a lease and every live key attached to it, in one revision
    /// (if any key goes) and one transaction; returns the keys deleted.
    @discardableResult
    public func revokeLease(_ id: Int64, index: LogIndex? = nil) throws(StorageError) -> [KeyValue] {
        if try lease(id) == nil { throw .leaseNotFound }
        let main = currentRevision + 1
        let (revision, deleted) = try writeVersions { txn throws(StorageError) -> (Int64, [KeyValue]) in
            let attached = try liveKeys(txn, RangeRequest(key: [0], rangeEnd: [0]), atOrBefore: main)
                .filter { $0.lease == id }
            var sub: Int64 = 0
            var deleted: [KeyValue] = []
            for kv in attached {
                deleted += try deleteVersions(txn, kv.key, [], main: main, sub: &sub)
            }
            try txn.delete(metaDB, Self.leaseKey(id))
            let revision = sub > 0 ? main : main - 1
            try txn.put(metaDB, Self.currentKey, KeyEncoding.bigEndian(revision))
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
            return (revision, deleted)
        }
        currentRevision = revision
        if let index { appliedIndex = index }
        return deleted
    }

    public func lease(_ id: Int64) throws(StorageError) -> LeaseRecord? {
        let path = environment.path
        return try environment.read { txn throws(StorageError) -> LeaseRecord? in
            guard let bytes = try txn.get(metaDB, Self.leaseKey(id)) else { return nil }
            guard bytes.count == 8 else { throw .corrupt(path: path, detail: "lease \(id) record is \(bytes.count) bytes") }
            return LeaseRecord(id: id, ttl: KeyEncoding.int64(bytes, at: 0))
        }
    }

    /// Every lease, by ID.
    public func leases() throws(StorageError) -> [LeaseRecord] {
        try environment.read { txn throws(StorageError) in try leases(in: txn) }
    }

    func leases(in txn: LMDBTransaction) throws(StorageError) -> [LeaseRecord] {
        let path = environment.path
        var found: [LeaseRecord] = []
        try txn.scan(metaDB, from: Self.leasePrefix) { key, value throws(StorageError) in
            guard key.starts(with: Self.leasePrefix) else { return false }
            guard key.count == Self.leasePrefix.count + 8, value.count == 8 else {
                throw .corrupt(path: path, detail: "malformed lease record")
            }
            found.append(LeaseRecord(id: KeyEncoding.int64(Array(key.dropFirst(Self.leasePrefix.count)), at: 0),
                                     ttl: KeyEncoding.int64(value, at: 0)))
            return true
        }
        return found
    }

    /// The live keys attached to a lease (a scan of the current keys).
    public func keys(attachedTo id: Int64) throws(StorageError) -> [[UInt8]] {
        let main = currentRevision
        return try environment.read { txn throws(StorageError) in
            try liveKeys(txn, RangeRequest(key: [0], rangeEnd: [0]), atOrBefore: main)
                .filter { $0.lease == id }.map(\.key)
        }
    }
}
