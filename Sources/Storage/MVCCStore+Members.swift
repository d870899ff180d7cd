import Consensus

/// Member attributes (name, peer and client URLs), replicated through the
/// log like any write and kept beside the data, so every member and every
/// restart knows the same directory. Opaque bytes here: the server owns
/// their format.
extension MVCCStore {
    static let memberPrefix = Array("member/".utf8)

    static func memberKey(_ id: UInt64) -> [UInt8] { memberPrefix + KeyEncoding.bigEndian(Int64(bitPattern: id)) }

    /// Set (or, with nil, remove) a member's attributes, with `index` applied
    /// in the same transaction.
    public func setMember(_ id: UInt64, attributes: [UInt8]?, index: LogIndex? = nil) throws(StorageError) {
        try environment.write { txn throws(StorageError) in
            if let attributes {
                try txn.put(metaDB, Self.memberKey(id), attributes)
            } else if try txn.get(metaDB, Self.memberKey(id)) != nil {
                try txn.delete(metaDB, Self.memberKey(id))
            }
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
        }
        if let index { appliedIndex = index }
    }

    /// Every member's attributes, by ID.
    public func members() throws(StorageError) -> [(id: UInt64, attributes: [UInt8])] {
        try environment.read { txn throws(StorageError) in try members(in: txn) }
    }

    func members(in txn: LMDBTransaction) throws(StorageError) -> [(id: UInt64, attributes: [UInt8])] {
        let path = environment.path
        var found: [(id: UInt64, attributes: [UInt8])] = []
        try txn.scan(metaDB, from: Self.memberPrefix) { key, value throws(StorageError) in
            guard key.starts(with: Self.memberPrefix) else { return false }
            guard key.count == Self.memberPrefix.count + 8 else { throw .corrupt(path: path, detail: "malformed member record") }
            let id = UInt64(bitPattern: KeyEncoding.int64(Array(key.dropFirst(Self.memberPrefix.count)), at: 0))
            found.append((id, value))
            return true
        }
        return found
    }
}
