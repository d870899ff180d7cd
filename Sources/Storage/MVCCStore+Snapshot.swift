import Consensus

/// The consensus state a store holds beside its data, so that a copy of its
/// file is a complete snapshot: what the log looked like at the last entry
/// applied (index, term, configuration).
extension MVCCStore {
    static let consensusKey = Array("consensus_state".utf8)

    /// Record that everything through `state.index` is applied, with the
    /// term of that entry and the configuration in force there. Called
    /// inside the batch that applied those entries, so both are durable
    /// together.
    public func recordApplied(_ state: SnapshotMetadata) throws(StorageError) {
        precondition(state.index >= appliedIndex, "applied index going back from \(appliedIndex) to \(state.index)")
        var w = BinaryWriter()
        w.u64(state.index.rawValue)
        w.u64(state.term.rawValue)
        ConsensusCodec.encode(state.membership, into: &w)
        try environment.write(inPlace: true) { txn throws(StorageError) in
            try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(state.index.rawValue)))
            try txn.put(metaDB, Self.consensusKey, w.bytes)
        }
        appliedIndex = state.index
    }

    /// What `recordApplied` last recorded; nil for a store that never applied a batch.
    public func appliedState() throws(StorageError) -> SnapshotMetadata? {
        let bytes = try environment.read { txn throws(StorageError) in try txn.get(metaDB, Self.consensusKey) }
        guard let bytes else { return nil }
        return try Self.decodeConsensusState(bytes, path: directory + "/data.mdb")
    }

    static func decodeConsensusState(_ bytes: [UInt8], path: String) throws(StorageError) -> SnapshotMetadata {
        var r = BinaryReader(bytes)
        guard let index = r.u64(), let term = r.u64(), let membership = ConsensusCodec.decodeMembership(&r), r.atEnd else {
            throw .corrupt(path: path, detail: "undecodable consensus state in the meta database")
        }
        return SnapshotMetadata(index: LogIndex(index), term: Term(term), membership: membership)
    }

    /// The consensus state inside a copy of a store's file, read without
    /// changing the file.
    static func appliedState(inCopy file: String, settings: MVCCSettings) throws(StorageError) -> SnapshotMetadata? {
        guard let bytes = try LMDBEnvironment.peek(file: file, mapSizeBytes: settings.mapSizeBytes, database: "meta", key: consensusKey) else {
            return nil
        }
        return try decodeConsensusState(bytes, path: file)
    }
}
