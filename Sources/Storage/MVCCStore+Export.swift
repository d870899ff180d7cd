/// What a backup holds besides the versions, read in the same LMDB read
/// transaction as them.
public struct StoreExport: Sendable {
    /// The consensus index the store applied through (etcd's consistent index).
    public var appliedIndex: UInt64
    /// The revision the history was compacted to (0: never).
    public var compactedRevision: Int64
    public var noSpaceAlarm: Bool
    public var leases: [LeaseRecord]
    /// Each member's attributes as the log recorded them.
    public var members: [(id: UInt64, attributes: [UInt8])]
}

/// One stored version, as an export reads it.
public struct ExportedVersion: Sendable {
    /// The revision that wrote it, and its place within the revision.
    public var main: Int64
    public var sub: Int64
    /// A deletion (etcd's tombstone: only `kv.key` means anything).
    public var tombstone: Bool
    public var kv: KeyValue
}

extension MVCCStore {
    /// Every version in revision order, then the rest of the store, from
    /// one read transaction of its own: a consistent picture while applies
    /// go on. Call it from a thread that is not applying.
    public func export(_ visit: (ExportedVersion) throws(StorageError) -> Void) throws(StorageError) -> StoreExport {
        let path = environment.path
        let (revisionsDB, metaDB) = (self.revisionsDB, self.metaDB)
        return try environment.readIsolated { txn throws(StorageError) -> StoreExport in
            try txn.scan(revisionsDB, from: []) { revision, bytes throws(StorageError) in
                guard let record = KeyEncoding.decode(revision: revision, record: bytes) else {
                    throw .corrupt(path: path, detail: "a version record fails its checksum")
                }
                try visit(ExportedVersion(main: record.modRevision, sub: record.sub, tombstone: record.tombstone, kv: record.keyValue))
                return true
            }
            return StoreExport(
                appliedIndex: UInt64(try Self.readInt(txn, metaDB, Self.appliedKey, path)),
                compactedRevision: try Self.readInt(txn, metaDB, Self.compactedKey, path),
                noSpaceAlarm: try txn.get(metaDB, Self.alarmKey) != nil,
                leases: try leases(in: txn), members: try members(in: txn))
        }
    }
}
