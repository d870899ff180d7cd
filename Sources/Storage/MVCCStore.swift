import CLMDB
import Consensus
#if canImport(Glibc)
import Glibc
#endif

/// A multi-version key-value store with etcd's semantics on LMDB.
///
/// Every committed write batch gets the next main revision; each operation
/// in it a sub-revision. Deletes leave tombstones until compaction. The
/// consensus index a batch applies is written in the same LMDB transaction
/// as the batch, so after a crash the store is either before or after the
/// whole entry: never applied twice, never skipped.
///
/// Layout, etcd's: `revisions` maps each revision to the version it wrote
/// (key, value, create revision, version, lease; see `KeyEncoding`), so a
/// commit's records append; `meta` holds the current and compacted
/// revisions, the applied consensus index, leases and members. Which
/// revisions hold a key is `index`'s business, in memory, rebuilt from the
/// records at open (etcd's treeIndex).
public final class MVCCStore: @unchecked Sendable {
    public let settings: MVCCSettings
    var environment: LMDBEnvironment
    var revisionsDB: MDB_dbi
    var metaDB: MDB_dbi
    /// Every key's versions, in key order.
    var index = KeyIndex()
    /// The index changes of writes not yet committed, oldest first: a write
    /// that throws, or a batch aborted, takes its changes back from here.
    var indexUndo: [(key: [UInt8], version: IndexedVersion)] = []
    /// The counters when the open batch began, restored if it aborts.
    private var batchStart: (revision: Int64, applied: LogIndex)?
    public let directory: String
    /// Raised when the database reached its quota; persisted, cleared by `disarmNoSpace()`.
    public internal(set) var noSpaceAlarm = false
    /// Where an unfinished compaction resumes; nil when none is under way.
    public internal(set) var compactionCursor: [UInt8]?
    public internal(set) var currentRevision: Int64 = MVCCStore.firstRevision
    /// The revision of a store nothing was written to, as in etcd.
    public static let firstRevision: Int64 = 1
    public private(set) var compactedRevision: Int64 = 0
    public internal(set) var appliedIndex: LogIndex = .zero

    static let currentKey = Array("current_revision".utf8)
    static let compactedKey = Array("compacted_revision".utf8)
    static let appliedKey = Array("applied_index".utf8)
    static let alarmKey = Array("alarm_nospace".utf8)
    /// Which layout the store's file holds; absent in stores of layout 1
    /// (versions under their keys in a `keys` database), which this code
    /// refuses (`StorageError.olderLayout`).
    static let layoutKey = Array("layout".utf8)
    static let layout: UInt8 = 2

    /// Opens (or creates) the store in `directory`, which must exist.
    public init(directory: String, settings: MVCCSettings = MVCCSettings()) throws(StorageError) {
        precondition(MVCCSettings.mapSizeBytesRange.contains(settings.mapSizeBytes), "map size out of range")
        precondition(MVCCSettings.checkpointIntervalRange.contains(settings.checkpointInterval), "checkpoint interval out of range")
        self.settings = settings
        self.directory = directory
        (environment, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
        try loadState(verifying: settings.verifyOnOpen)
        if settings.keepsPowerCutImage { try sync() }
    }

    /// Close the database now (an import hands its directory over); using
    /// the store afterwards is a bug.
    public func close() { environment.close() }

    /// Read the counters the meta database holds and rebuild the key index
    /// from the records, finishing an interrupted compaction; at open and
    /// after the file was replaced. With `verifying`, check every record's
    /// checksum on the way.
    private func loadState(verifying: Bool) throws(StorageError) {
        try checkLayout()
        let (current, compacted, applied) = try environment.read { txn throws(StorageError) in
            (try Self.readInt(txn, metaDB, Self.currentKey, directory),
             try Self.readInt(txn, metaDB, Self.compactedKey, directory),
             try Self.readInt(txn, metaDB, Self.appliedKey, directory))
        }
        guard compacted <= current else {
            throw .corrupt(path: directory, detail: "compacted revision \(compacted) is past current revision \(current)")
        }
        noSpaceAlarm = try environment.read { txn throws(StorageError) in try txn.get(metaDB, Self.alarmKey) != nil }
        // etcd's history starts at revision 1: a fresh store is there, and
        // its first write makes revision 2.
        currentRevision = max(current, Self.firstRevision)
        compactedRevision = compacted
        appliedIndex = LogIndex(UInt64(applied))
        indexUndo = []
        index = try rebuildIndex(checking: verifying)
        compactionCursor = nil
        if try environment.read({ txn throws(StorageError) in try txn.get(metaDB, Self.compactionPendingKey) != nil }) {
            // A compaction was cut short by a crash: finish it.
            index.compact(to: compacted)
            compactionCursor = []
            while try compactionStep() {}
        }
    }

    /// Refuse a file of another layout (a new file was marked as this
    /// layout's where its databases were created: `openEnvironment`).
    private func checkLayout() throws(StorageError) {
        let path = directory + "/data.mdb"
        let marked = try environment.read { txn throws(StorageError) in try txn.get(metaDB, Self.layoutKey) }
        switch marked {
        case [Self.layout]?:
            return
        case nil:
            throw .olderLayout(path: path, found: 1, expected: Int(Self.layout))
        case let other?:
            throw .olderLayout(path: path, found: Int(other.first ?? 0), expected: Int(Self.layout))
        }
    }

    /// The key index of every stored version: one scan of the records in
    /// revision order.
    private func rebuildIndex(checking: Bool) throws(StorageError) -> KeyIndex {
        let file = directory + "/data.mdb"
        return try environment.read { txn throws(StorageError) -> KeyIndex in
            var rebuilt = KeyIndex()
            try txn.scan(revisionsDB, from: []) { revision, bytes throws(StorageError) in
                guard let record = KeyEncoding.decode(revision: revision, record: bytes, checked: checking) else {
                    throw .corrupt(path: file, detail: checking ? "a version record fails its checksum" : "undecodable version record")
                }
                rebuilt.append(record.key, IndexedVersion(main: record.modRevision, sub: record.sub, tombstone: record.tombstone))
                return true
            }
            return rebuilt
        }
    }

    /// Replace the whole store by a snapshot (a member that lagged the
    /// leader's compacted log): the file is swapped in verified, then every
    /// counter is read from it. Callers must hold off readers meanwhile.
    public func replace(with info: SnapshotInfo, from snapshots: SnapshotStore, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) {
        environment.close()
        try snapshots.restore(info, into: directory, progress: progress)
        (environment, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
        // No record-by-record check: the restore wrote exactly the bytes the
        // snapshot's checksum covers, and verified them as it wrote.
        try loadState(verifying: false)
        if settings.keepsPowerCutImage { try keepPowerCutImage() }
    }

    static func readInt(_ txn: LMDBTransaction, _ db: MDB_dbi, _ key: [UInt8], _ path: String) throws(StorageError) -> Int64 {
        guard let bytes = try txn.get(db, key) else { return 0 }
        guard bytes.count == 8 else { throw .corrupt(path: path, detail: "meta value \(String(decoding: key, as: UTF8.self)) is \(bytes.count) bytes") }
        return KeyEncoding.int64(bytes, at: 0)
    }

    // MARK: Writes

    /// Apply many writes as one durable LMDB commit (one fsync), each still
    /// atomic on its own: a write that throws inside rolls back alone. The
    /// node applies every committed entry of a `Ready` this way.
    public func batch<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try openBatch()
        do {
            let result = try body()
            try commitBatch()
            return result
        } catch {
            abortBatch()
            throw error
        }
    }

    /// `batch` across calls: writes from `openBatch` to `commitBatch` are
    /// one LMDB commit. Only the thread that opened it may use the store
    /// until it commits; reads see the batch so far.
    public func openBatch() throws(StorageError) {
        precondition(indexUndo.isEmpty, "index changes outside a batch were left uncommitted")
        try environment.openBatch()
        batchStart = (currentRevision, appliedIndex)
    }

    public func commitBatch() throws(StorageError) {
        do {
            try environment.commitBatch()
        } catch {
            undoIndex(to: 0)
            restoreBatchStart()
            throw error
        }
        indexUndo.removeAll(keepingCapacity: true)
        batchStart = nil
    }

    /// Drop the open batch's writes, the key index's and the counters' too.
    public func abortBatch() {
        environment.abortBatch()
        undoIndex(to: 0)
        restoreBatchStart()
    }

    private func restoreBatchStart() {
        if let (revision, applied) = batchStart {
            currentRevision = revision
            appliedIndex = applied
        }
        batchStart = nil
    }

    public var batchIsOpen: Bool { environment.batchIsOpen }

    /// `environment.write` for writes that change the key index: if `body`
    /// throws, its index changes are taken back with its LMDB writes; once
    /// committed outside a batch, they are final.
    func writeVersions<T>(inPlace: Bool = false, _ body: (LMDBTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        let mark = indexUndo.count
        do {
            let result = try environment.write(inPlace: inPlace, body)
            if !environment.batchIsOpen { indexUndo.removeAll(keepingCapacity: true) }
            return result
        } catch {
            undoIndex(to: mark)
            throw error
        }
    }

    private func undoIndex(to mark: Int) {
        while indexUndo.count > mark {
            let (key, version) = indexUndo.removeLast()
            index.removeNewest(key, version)
        }
    }

    /// Apply `operations` atomically as one revision (if any of them changes
    /// anything), recording `index` as applied in the same transaction.
    @discardableResult
    public func apply(_ operations: [WriteOperation], index: LogIndex? = nil) throws(StorageError) -> (revision: Int64, outcomes: [WriteOutcome]) {
        let bytes = operations.reduce(0) { total, op in
            switch op {
            case .put(let key, let value, _, _): total + key.count + value.count
            case .deleteRange(let key, let end): total + key.count + end.count
            }
        }
        if bytes > settings.requestBytesMax { throw .requestTooLarge(bytes: bytes, limit: settings.requestBytesMax) }
        if operations.contains(where: { if case .put = $0 { true } else { false } }) { try checkSpace() }
        for operation in operations {
            switch operation {
            case .put(let key, let value, let lease, let options):
                try checkKey(key)
                if value.count > settings.valueBytesMax { throw .valueTooLarge(bytes: value.count, limit: settings.valueBytesMax) }
                if options.contains(.ignoreValue) && !value.isEmpty { throw .valueProvided }
                if options.contains(.ignoreLease) && lease != 0 { throw .leaseProvided }
            case .deleteRange(let key, _):
                try checkKey(key)
            }
        }
        let main = currentRevision + 1
        // One operation refuses only before it writes (`putVersion` checks
        // first); a later one could refuse after an earlier one wrote.
        let result = try writeVersions(inPlace: operations.count <= 1) { txn throws(StorageError) -> (Int64, [WriteOutcome]) in
            var sub: Int64 = 0
            var outcomes: [WriteOutcome] = []
            for operation in operations {
                switch operation {
                case .put(let key, let value, let lease, let options):
                    outcomes.append(.put(previous: try putVersion(txn, key, value, lease, options, main: main, sub: &sub)))
                case .deleteRange(let key, let rangeEnd):
                    outcomes.append(.deleted(try deleteVersions(txn, key, rangeEnd, main: main, sub: &sub)))
                }
            }
            let revision = sub > 0 ? main : main - 1
            try txn.put(metaDB, Self.currentKey, KeyEncoding.bigEndian(revision))
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
            return (revision, outcomes)
        }
        currentRevision = result.0
        if let index { appliedIndex = index }
        return result
    }

    /// Write a new version of `key`; returns the version it supersedes.
    func putVersion(_ txn: LMDBTransaction, _ key: [UInt8], _ value: [UInt8], _ lease: Int64, _ options: PutOptions, main: Int64, sub: inout Int64) throws(StorageError) -> KeyValue? {
        let previous = try latest(txn, key, atOrBefore: main)
        let alive = previous.flatMap { $0.tombstone ? nil : $0 }
        if !options.isEmpty && alive == nil { throw .keyNotFound }
        let value = options.contains(.ignoreValue) ? alive!.kv.value : value
        let lease = options.contains(.ignoreLease) ? alive!.kv.lease : lease
        if settings.leasesMustExist && lease != 0 && !options.contains(.ignoreLease) {
            if try txn.get(metaDB, Self.leaseKey(lease)) == nil { throw .leaseNotFound }
        }
        try write(txn, key, main: main, sub: sub, tombstone: false, createRevision: alive?.kv.createRevision ?? main,
                  version: (alive?.kv.version ?? 0) + 1, lease: lease, value: value)
        sub += 1
        return alive?.kv
    }

    /// Tombstone every live key in the range; returns what was deleted.
    func deleteVersions(_ txn: LMDBTransaction, _ key: [UInt8], _ rangeEnd: [UInt8], main: Int64, sub: inout Int64) throws(StorageError) -> [KeyValue] {
        let live = try liveKeys(txn, RangeRequest(key: key, rangeEnd: rangeEnd), atOrBefore: main)
        for kv in live {
            try write(txn, kv.key, main: main, sub: sub, tombstone: true, createRevision: 0, version: 0, lease: 0, value: [])
            sub += 1
        }
        return live
    }

    /// Refuse writes that add data once the quota is reached, raising the
    /// (persisted) alarm; deletes, reads and compaction still work, so an
    /// operator can free space, defragment and disarm, as with etcd.
    func checkSpace() throws(StorageError) {
        let used = try quotaUsage(against: settings.quotaBytes)
        if noSpaceAlarm || used >= settings.quotaBytes {
            if !noSpaceAlarm {
                try environment.write { txn throws(StorageError) in try txn.put(metaDB, Self.alarmKey, [1]) }
                noSpaceAlarm = true
            }
            throw .noSpace(usedBytes: used, quotaBytes: settings.quotaBytes)
        }
    }

    /// Clear the NOSPACE alarm; refused while the database is still at its quota.
    /// Raise or clear the NOSPACE alarm as a replicated decision, with
    /// `index` applied in the same transaction. A replicated store turns its
    /// own quota check off (every member's file differs in size) and lets
    /// this flag alone refuse writes, so all members refuse the same ones.
    public func setNoSpaceAlarm(_ raised: Bool, index: LogIndex? = nil) throws(StorageError) {
        try environment.write { txn throws(StorageError) in
            if raised { try txn.put(metaDB, Self.alarmKey, [1]) } else { try txn.delete(metaDB, Self.alarmKey) }
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
        }
        noSpaceAlarm = raised
        if let index { appliedIndex = index }
    }

    public func disarmNoSpace() throws(StorageError) {
        let used = try quotaUsage(against: settings.quotaBytes)
        if used >= settings.quotaBytes { throw .noSpace(usedBytes: used, quotaBytes: settings.quotaBytes) }
        try environment.write { txn throws(StorageError) in try txn.delete(metaDB, Self.alarmKey) }
        noSpaceAlarm = false
    }

    /// Check every stored version against its checksum, and that each
    /// revision holds at most one version of a key; refuse, naming the
    /// file, on any damage.
    public func verifyAll() throws(StorageError) {
        _ = try rebuildIndex(checking: true)
    }

    /// Bytes the database file uses (etcd_mvcc_db_total_size_in_use_in_bytes).
    public func usedBytes() throws(StorageError) -> Int { try environment.usedBytes() }

    /// Bytes of the file's pages that hold data (etcd's dbSizeInUse).
    public func inUseBytes() throws(StorageError) -> Int { try environment.inUseBytes() }

    /// What counts against a quota of `quota` bytes: the file's pages up to
    /// its last, or when that reaches the quota, the pages holding data
    /// (LMDB reuses the free ones first; a checkpoint holds some free for
    /// an instant, which a new member's first commits are made of).
    public func quotaUsage(against quota: Int) throws(StorageError) -> Int {
        let used = try environment.usedBytes()
        return used < quota ? used : try environment.inUseBytes()
    }

    /// Make every commit so far durable (the last one's meta page, under
    /// `CommitDurability.dataOnly`; a checkpoint under `.checkpointed`).
    /// Callable from any thread beside the writer: what was committed
    /// before the call is on disk when it returns.
    public func sync() throws(StorageError) {
        try environment.sync()
        if settings.keepsPowerCutImage { try keepPowerCutImage() }
    }

    /// `.checkpointed`: a checkpoint (`sync()`) if the last one is
    /// `settings.checkpointInterval` old. From any thread, beside the
    /// writer, whose commits it holds up only for an instant (never for
    /// its flushes). Other durabilities: nothing.
    public func checkpointIfDue() throws(StorageError) {
        guard settings.commitDurability == .checkpointed else { return }
        if try environment.checkpoint(ifOlderThan: settings.checkpointInterval), settings.keepsPowerCutImage {
            try keepPowerCutImage()
        }
    }

    /// The file `MVCCSettings.keepsPowerCutImage` keeps in the store's directory.
    public static let powerCutImageName = "data.mdb.power-cut"

    /// Test-only: copy the store, as of now, to `powerCutImageName` (via a
    /// temporary file and a rename, so a kill mid-copy leaves the previous
    /// image). The copy starts after the flush that called it, so it holds
    /// at least what that flush made durable: never less than a power
    /// failure would leave.
    private func keepPowerCutImage() throws(StorageError) {
        let image = directory + "/" + Self.powerCutImageName
        let temp = image + ".tmp"
        try environment.copy(toFile: temp, synced: false)
        if rename(temp, image) != 0 { throw .io(errno: errno, operation: "rename", path: image) }
    }

    /// Rewrite the database without free pages and swap it in (etcd's
    /// defragment): a compacted copy, fsynced, renamed over the old file.
    public func defragment() throws(StorageError) {
        let file = directory + "/data.mdb"
        let temp = file + ".defrag"
        try environment.copy(toFile: temp, synced: true)
        environment.close()
        if rename(temp, file) != 0 { throw .io(errno: errno, operation: "rename", path: file) }
        try WriteAheadLog.syncDirectory(directory)
        (environment, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
        if settings.keepsPowerCutImage { try keepPowerCutImage() }
    }

    static func openEnvironment(_ directory: String, _ settings: MVCCSettings) throws(StorageError) -> (LMDBEnvironment, MDB_dbi, MDB_dbi) {
        let environment = try LMDBEnvironment(
            directory: directory, mapSizeBytes: settings.mapSizeBytes, databaseNames: ["revisions", "meta"],
            durability: settings.commitDurability, pinsCheckpoints: !settings.checkpointsForgetToPin
        ) { txn, databases throws(StorageError) in
            // A new file is born in this layout.
            try txn.put(databases["meta"]!, layoutKey, [layout])
        }
        return (environment, environment.databases["revisions"]!, environment.databases["meta"]!)
    }

    func checkKey(_ key: [UInt8]) throws(StorageError) {
        if key.isEmpty { throw .emptyKey }
        if key.count > settings.keyBytesMax { throw .keyTooLarge(bytes: key.count, limit: settings.keyBytesMax) }
    }

    /// Store a version (its record under its revision) and index it.
    func write(
        _ txn: LMDBTransaction, _ key: [UInt8], main: Int64, sub: Int64, tombstone: Bool,
        createRevision: Int64, version: Int64, lease: Int64, value: [UInt8]
    ) throws(StorageError) {
        let revision = KeyEncoding.revision(main: main, sub: sub)
        try txn.put(revisionsDB, revision, KeyEncoding.record(
            key: key, revision: revision, tombstone: tombstone, createRevision: createRevision, version: version, lease: lease, value: value))
        let indexed = IndexedVersion(main: main, sub: sub, tombstone: tombstone)
        index.append(key, indexed)
        indexUndo.append((key, indexed))
    }

    // MARK: Reads

    /// How many keys are live (not deleted) now: one count over the key
    /// index, for the start and after a snapshot replaced the store.
    public func liveKeyCount() throws(StorageError) -> Int {
        try range(RangeRequest(key: [0], rangeEnd: [0], countOnly: true)).count
    }

    public func range(_ request: RangeRequest) throws(StorageError) -> RangeResult {
        let at = request.revision ?? currentRevision
        if at < compactedRevision { throw .compacted(requested: at, compacted: compactedRevision) }
        if at > currentRevision { throw .futureRevision(requested: at, current: currentRevision) }
        let current = currentRevision
        if request.countOnly && !request.filtersRevisions {
            // etcd's count comes from its index alone; so does this one.
            let count = try liveVersions(request, atOrBefore: at).count
            let more = request.limit.map { count > $0 } ?? false
            return RangeResult(kvs: [], count: count, more: more, revision: current)
        }
        return try environment.read { txn throws(StorageError) in
            shape(request, try liveKeys(txn, request, atOrBefore: at), revision: current)
        }
    }

    /// Apply a range request's filters, sort, limit and projections to the
    /// live keys it matched (etcd's order: count all matches, filter, sort,
    /// then cut to the limit).
    func shape(_ request: RangeRequest, _ matches: [KeyValue], revision: Int64) -> RangeResult {
        var kvs = request.countOnly ? [] : matches.filter { kv in
            (request.minModRevision.map { kv.modRevision >= $0 } ?? true)
                && (request.maxModRevision.map { kv.modRevision <= $0 } ?? true)
                && (request.minCreateRevision.map { kv.createRevision >= $0 } ?? true)
                && (request.maxCreateRevision.map { kv.createRevision <= $0 } ?? true)
        }
        if let order = request.sortOrder {
            func key(_ kv: KeyValue) -> (Int64, [UInt8]) {
                switch request.sortTarget {
                case .key: (0, kv.key)
                case .version: (kv.version, [])
                case .createRevision: (kv.createRevision, [])
                case .modRevision: (kv.modRevision, [])
                case .value: (0, kv.value)
                }
            }
            kvs.sort { a, b in
                let (x, y) = (key(a), key(b))
                let less = x.0 != y.0 ? x.0 < y.0 : x.1.lexicographicallyPrecedes(y.1)
                let greater = x.0 != y.0 ? x.0 > y.0 : y.1.lexicographicallyPrecedes(x.1)
                // Ties keep key order, so results are deterministic.
                if !less && !greater { return a.key.lexicographicallyPrecedes(b.key) }
                return order == .ascend ? less : greater
            }
        }
        let filtered = kvs.count
        if let limit = request.limit, kvs.count > limit { kvs.removeLast(kvs.count - limit) }
        if request.keysOnly { for i in kvs.indices { kvs[i].value = [] } }
        let more = request.limit.map { (request.countOnly ? matches.count : filtered) > $0 } ?? false
        return RangeResult(kvs: kvs, count: matches.count, more: more, revision: revision)
    }

    /// The newest version of `key` at or before revision `main`, if any.
    func latest(_ txn: LMDBTransaction, _ key: [UInt8], atOrBefore main: Int64) throws(StorageError) -> (kv: KeyValue, tombstone: Bool)? {
        guard let version = index.newest(key, atOrBefore: main) else { return nil }
        let record = try self.record(txn, key, version)
        return (record.keyValue, record.tombstone)
    }

    /// The record of `key`'s `version`, which the index names.
    func record(_ txn: LMDBTransaction, _ key: [UInt8], _ version: IndexedVersion) throws(StorageError) -> KeyEncoding.Record {
        let revision = KeyEncoding.revision(main: version.main, sub: version.sub)
        guard let bytes = try txn.get(revisionsDB, revision) else {
            throw .corrupt(path: directory + "/data.mdb", detail: "revision \(version.main)_\(version.sub) is indexed but not stored")
        }
        guard let record = KeyEncoding.decode(revision: revision, record: bytes) else {
            throw .corrupt(path: directory + "/data.mdb", detail: "a version record fails its checksum")
        }
        guard record.key == key, record.tombstone == version.tombstone else {
            throw .corrupt(path: directory + "/data.mdb", detail: "revision \(version.main)_\(version.sub) holds another key than the index says")
        }
        return record
    }

    /// The live keys in `request`'s range at revision `main`, and their
    /// versions, in key order, from the index alone.
    func liveVersions(_ request: RangeRequest, atOrBefore main: Int64) throws(StorageError) -> [(key: [UInt8], version: IndexedVersion)] {
        if request.rangeEnd.isEmpty {
            guard let version = index.newest(request.key, atOrBefore: main), !version.tombstone else { return [] }
            return [(request.key, version)]
        }
        var found: [(key: [UInt8], version: IndexedVersion)] = []
        try index.forEach(from: request.key) { key, versions throws(StorageError) in
            if request.isPastEnd(key) { return false }
            if let version = KeyIndex.newest(versions, atOrBefore: main), !version.tombstone { found.append((key, version)) }
            return true
        }
        return found
    }

    /// Live keys in `request`'s range as of revision `main`, in key order.
    func liveKeys(_ txn: LMDBTransaction, _ request: RangeRequest, atOrBefore main: Int64) throws(StorageError) -> [KeyValue] {
        var result: [KeyValue] = []
        for (key, version) in try liveVersions(request, atOrBefore: main) {
            result.append(try record(txn, key, version).keyValue)
        }
        return result
    }

    // MARK: Compaction

    static let compactionPendingKey = Array("compaction_pending".utf8)

    /// Physically remove every version superseded at `revision`, and
    /// tombstones at or before it; reads before `revision` fail from the
    /// moment this starts. Runs in batches (`compactionStep()`), so a caller
    /// can interleave writes; this convenience runs them all.
    public func compact(to revision: Int64) throws(StorageError) {
        try beginCompaction(to: revision)
        while try compactionStep() {}
    }

    /// Record the compaction target durably first: reads below it fail at
    /// once, and a crash part-way resumes it on open. The key index forgets
    /// the doomed versions now; the records go in `compactionStep`s.
    public func beginCompaction(to revision: Int64) throws(StorageError) {
        if revision <= compactedRevision { throw .compacted(requested: revision, compacted: compactedRevision) }
        if revision > currentRevision { throw .futureRevision(requested: revision, current: currentRevision) }
        try environment.write { txn throws(StorageError) in
            try txn.put(metaDB, Self.compactedKey, KeyEncoding.bigEndian(revision))
            try txn.put(metaDB, Self.compactionPendingKey, [])
        }
        compactedRevision = revision
        // Not undone if an open batch aborts: that stops the member, and
        // the next open rebuilds the index from the file. The batch's undo
        // log forgets the versions compaction took, so an abort undoes the rest.
        index.compact(to: revision)
        indexUndo.removeAll { !index.contains($0.key, main: $0.version.main, sub: $0.version.sub) }
        compactionCursor = []
    }

    /// Delete the next `settings.compactionBatchKeys` records at or before
    /// the compacted revision that the key index no longer names (etcd's
    /// compaction batch), in one LMDB transaction; false when done.
    public func compactionStep() throws(StorageError) -> Bool {
        guard let start = compactionCursor else { return false }
        let revision = compactedRevision
        let batch = settings.compactionBatchKeys
        let file = directory + "/data.mdb"
        let next = try environment.write { txn throws(StorageError) -> [UInt8]? in
            var doomed: [[UInt8]] = []
            var seen = 0
            var resume: [UInt8]?
            try txn.scan(revisionsDB, from: start) { key, bytes throws(StorageError) in
                guard KeyEncoding.int64(key, at: 0) <= revision else { return false }
                if seen == batch {
                    resume = key
                    return false
                }
                seen += 1
                guard let record = KeyEncoding.decode(revision: key, record: bytes, checked: false) else {
                    throw .corrupt(path: file, detail: "undecodable version record")
                }
                if !index.contains(record.key, main: record.modRevision, sub: record.sub) { doomed.append(key) }
                return true
            }
            for key in doomed { try txn.delete(revisionsDB, key) }
            if resume == nil { try txn.delete(metaDB, Self.compactionPendingKey) }
            return resume
        }
        compactionCursor = next
        return next != nil
    }

}
