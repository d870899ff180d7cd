import Consensus

/// Filling an empty store from a backup (an etcd or Ballot snapshot, or an
/// etcd member's backend): the export's inverse. Versions keep their
/// revisions, so clients see the same history, revisions and create
/// revisions after a migration as before it.
extension MVCCStore {
    /// Versions a backup adds, in revision order, as one LMDB transaction.
    /// The store must hold nothing newer than the first of them, and no
    /// earlier call may have imported the same revision and sub-revision.
    public func importVersions(_ versions: [ExportedVersion]) throws(StorageError) {
        guard let first = versions.first else { return }
        // `>=`: one revision's versions may span two calls.
        guard first.main >= currentRevision else {
            throw .corrupt(path: directory, detail: "an imported version at revision \(first.main) is not after the store's \(currentRevision)")
        }
        var last = (main: Int64.min, sub: Int64.min)
        let newest = try writeVersions { txn throws(StorageError) -> Int64 in
            for version in versions {
                guard (version.main, version.sub) > last, version.main >= Self.firstRevision, version.sub >= 0 else {
                    throw .corrupt(path: directory, detail: "imported versions out of revision order at \(version.main)_\(version.sub)")
                }
                last = (version.main, version.sub)
                try checkKey(version.kv.key)
                try write(
                    txn, version.kv.key, main: version.main, sub: version.sub, tombstone: version.tombstone,
                    createRevision: version.tombstone ? 0 : version.kv.createRevision,
                    version: version.tombstone ? 0 : version.kv.version,
                    lease: version.tombstone ? 0 : version.kv.lease, value: version.tombstone ? [] : version.kv.value)
            }
            try txn.put(metaDB, Self.currentKey, KeyEncoding.bigEndian(last.main))
            return last.main
        }
        currentRevision = newest
    }

    static let importKey = Array("import_awaiting_log".utf8)

    /// Ends an import: the backup's current revision (etcd's can be past
    /// its newest version, after deletions of nothing), its compaction, run
    /// again here so that nothing older than it stays readable, and the
    /// consensus state the data stands for: a snapshot at `state` (the
    /// founding configuration), so a member added later gets the data by a
    /// snapshot, as no log entry holds it. The store stays marked until the
    /// member's log records that snapshot (`logRecordedImport`).
    public func finishImport(currentRevision revision: Int64, compactedRevision compacted: Int64, state: SnapshotMetadata) throws(StorageError) {
        if revision > currentRevision {
            try environment.write { txn throws(StorageError) in try txn.put(metaDB, Self.currentKey, KeyEncoding.bigEndian(revision)) }
            currentRevision = revision
        }
        if compacted > compactedRevision && compacted <= currentRevision { try compact(to: compacted) }
        try recordApplied(state)
        try environment.write { txn throws(StorageError) in try txn.put(metaDB, Self.importKey, [1]) }
    }

    /// Whether this store is an import whose member has not yet recorded,
    /// in its log, the snapshot the import stands for.
    public func importAwaitsLog() throws(StorageError) -> Bool {
        try environment.read { txn throws(StorageError) in try txn.get(metaDB, Self.importKey) != nil }
    }

    /// The log now records the import's snapshot: from here on the store is
    /// like any other (a log lost later is refused, not taken for an import).
    public func logRecordedImport() throws(StorageError) {
        try environment.write { txn throws(StorageError) in
            if try txn.get(metaDB, Self.importKey) != nil { try txn.delete(metaDB, Self.importKey) }
        }
    }
}
