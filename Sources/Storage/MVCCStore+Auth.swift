import Consensus

/// etcd's auth store (its `auth`, `authUsers` and `authRoles` buckets),
/// replicated through the log and kept beside the data, so a copy of the
/// file (a snapshot) carries it. Opaque records here, each under a name
/// in the `meta` database: the state machine owns their format.
extension MVCCStore {
    static let authPrefix = Array("auth/".utf8)

    /// Write auth records (nil removes one), with `index` applied in the
    /// same transaction.
    public func writeAuth(_ changes: [(name: [UInt8], record: [UInt8]?)], index: LogIndex? = nil) throws(StorageError) {
        try environment.write { txn throws(StorageError) in
            for (name, record) in changes {
                let key = Self.authPrefix + name
                if let record {
                    try txn.put(metaDB, key, record)
                } else if try txn.get(metaDB, key) != nil {
                    try txn.delete(metaDB, key)
                }
            }
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
        }
        if let index { appliedIndex = index }
    }

    /// Every auth record, by name in byte order.
    public func authRecords() throws(StorageError) -> [(name: [UInt8], record: [UInt8])] {
        try environment.read { txn throws(StorageError) in
            var found: [(name: [UInt8], record: [UInt8])] = []
            try txn.scan(metaDB, from: Self.authPrefix) { key, value throws(StorageError) in
                guard key.starts(with: Self.authPrefix) else { return false }
                found.append((Array(key.dropFirst(Self.authPrefix.count)), value))
                return true
            }
            return found
        }
    }
}
