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
/// Layout: `keys` maps escaped user key + revision to a version record;
/// `revisions` maps revision to the composite key (the event feed, in
/// revision order); `meta` holds the current and compacted revisions and
/// the applied consensus index.
public final class MVCCStore: @unchecked Sendable {
    public let settings: MVCCSettings
    var environment: LMDBEnvironment
    var keysDB: MDB_dbi
    var revisionsDB: MDB_dbi
    var metaDB: MDB_dbi
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

    /// Opens (or creates) the store in `directory`, which must exist.
    public init(directory: String, settings: MVCCSettings = MVCCSettings()) throws(StorageError) {
        precondition(MVCCSettings.mapSizeBytesRange.contains(settings.mapSizeBytes), "map size out of range")
        precondition(MVCCSettings.checkpointIntervalRange.contains(settings.checkpointInterval), "checkpoint interval out of range")
        self.settings = settings
        self.directory = directory
        (environment, keysDB, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
        try loadState(verifying: settings.verifyOnOpen)
        if settings.keepsPowerCutImage { try sync() }
    }

    /// Close the database now (an import hands its directory over); using
    /// the store afterwards is a bug.
    public func close() { environment.close() }

    /// Read the counters the meta database holds, finishing an interrupted
    /// compaction first; at open and after the file was replaced. With
    /// `verifying`, check every record's checksum first.
    private func loadState(verifying: Bool) throws(StorageError) {
        let (current, compacted, applied) = try environment.read { txn throws(StorageError) in
            (try Self.readInt(txn, metaDB, Self.currentKey, directory),
             try Self.readInt(txn, metaDB, Self.compactedKey, directory),
             try Self.readInt(txn, metaDB, Self.appliedKey, directory))
        }
        noSpaceAlarm = try environment.read { txn throws(StorageError) in try txn.get(metaDB, Self.alarmKey) != nil }
        if verifying { try verifyAll() }
        compactionCursor = nil
        if try environment.read({ txn throws(StorageError) in try txn.get(metaDB, Self.compactionPendingKey) != nil }) {
            // A compaction was cut short by a crash: finish it.
            compactionCursor = []
            while try compactionStep() {}
        }
        // etcd's history starts at revision 1: a fresh store is there, and
        // its first write makes revision 2.
        currentRevision = max(current, Self.firstRevision)
        compactedRevision = compacted
        appliedIndex = LogIndex(UInt64(applied))
        guard compacted <= current else {
            throw .corrupt(path: directory, detail: "compacted revision \(compacted) is past current revision \(current)")
        }
    }

    /// Replace the whole store by a snapshot (a member that lagged the
    /// leader's compacted log): the file is swapped in verified, then every
    /// counter is read from it. Callers must hold off readers meanwhile.
    public func replace(with info: SnapshotInfo, from snapshots: SnapshotStore, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) {
        environment.close()
        try snapshots.restore(info, into: directory, progress: progress)
        (environment, keysDB, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
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
        try environment.batch(body)
    }

    /// `batch` across calls: writes from `openBatch` to `commitBatch` are
    /// one LMDB commit. Only the thread that opened it may use the store
    /// until it commits; reads see the batch so far.
    public func openBatch() throws(StorageError) { try environment.openBatch() }
    public func commitBatch() throws(StorageError) { try environment.commitBatch() }
    public var batchIsOpen: Bool { environment.batchIsOpen }

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
        let result = try environment.write(inPlace: operations.count <= 1) { txn throws(StorageError) -> (Int64, [WriteOutcome]) in
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
        try write(txn, key, main: main, sub: sub) { composite in
            KeyEncoding.record(
                key: key, composite: composite, tombstone: false, createRevision: alive?.kv.createRevision ?? main,
                version: (alive?.kv.version ?? 0) + 1, lease: lease, value: value)
        }
        sub += 1
        return alive?.kv
    }

    /// Tombstone every live key in the range; returns what was deleted.
    func deleteVersions(_ txn: LMDBTransaction, _ key: [UInt8], _ rangeEnd: [UInt8], main: Int64, sub: inout Int64) throws(StorageError) -> [KeyValue] {
        let live = try liveKeys(txn, RangeRequest(key: key, rangeEnd: rangeEnd), atOrBefore: main, environment.path)
        for kv in live {
            try write(txn, kv.key, main: main, sub: sub) { composite in
                KeyEncoding.record(key: kv.key, composite: composite, tombstone: true, createRevision: 0, version: 0, lease: 0, value: [])
            }
            sub += 1
        }
        return live
    }

    /// Refuse writes that add data once the quota is reached, raising the
    /// (persisted) alarm; deletes, reads and compaction still work, so an
    /// operator can free space, defragment and disarm, as with etcd.
    func checkSpace() throws(StorageError) {
        let used = try environment.usedBytes()
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
        let used = try environment.usedBytes()
        if used >= settings.quotaBytes { throw .noSpace(usedBytes: used, quotaBytes: settings.quotaBytes) }
        try environment.write { txn throws(StorageError) in try txn.delete(metaDB, Self.alarmKey) }
        noSpaceAlarm = false
    }

    /// Check every stored version against its checksum and the revision
    /// index against the versions; refuse, naming the file, on any damage.
    public func verifyAll() throws(StorageError) {
        let file = directory + "/data.mdb"
        try environment.read { txn throws(StorageError) in
            var versions = 0
            try txn.scan(keysDB, from: []) { composite, bytes throws(StorageError) in
                guard KeyEncoding.decode(composite: composite, record: bytes) != nil else {
                    throw .corrupt(path: file, detail: "a version record fails its checksum")
                }
                versions += 1
                return true
            }
            var indexed = 0
            try txn.scan(revisionsDB, from: []) { _, composite throws(StorageError) in
                guard try txn.get(keysDB, composite) != nil else {
                    throw .corrupt(path: file, detail: "the revision index names a missing version")
                }
                indexed += 1
                return true
            }
            if indexed != versions {
                throw .corrupt(path: file, detail: "\(versions) versions but \(indexed) revision index entries")
            }
        }
    }

    /// Bytes the database file uses (etcd_mvcc_db_total_size_in_use_in_bytes).
    public func usedBytes() throws(StorageError) -> Int { try environment.usedBytes() }

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
        (environment, keysDB, revisionsDB, metaDB) = try Self.openEnvironment(directory, settings)
        if settings.keepsPowerCutImage { try keepPowerCutImage() }
    }

    static func openEnvironment(_ directory: String, _ settings: MVCCSettings) throws(StorageError) -> (LMDBEnvironment, MDB_dbi, MDB_dbi, MDB_dbi) {
        let environment = try LMDBEnvironment(
            directory: directory, mapSizeBytes: settings.mapSizeBytes, databaseNames: ["keys", "revisions", "meta"],
            durability: settings.commitDurability, pinsCheckpoints: !settings.checkpointsForgetToPin)
        return (environment, environment.databases["keys"]!, environment.databases["revisions"]!, environment.databases["meta"]!)
    }

    func checkKey(_ key: [UInt8]) throws(StorageError) {
        if key.isEmpty { throw .emptyKey }
        if key.count > settings.keyBytesMax { throw .keyTooLarge(bytes: key.count, limit: settings.keyBytesMax) }
    }

    func write(_ txn: LMDBTransaction, _ key: [UInt8], main: Int64, sub: Int64, _ record: ([UInt8]) -> [UInt8]) throws(StorageError) {
        let composite = KeyEncoding.composite(key, main: main, sub: sub)
        try txn.put(keysDB, composite, record(composite))
        try txn.put(revisionsDB, KeyEncoding.revision(main: main, sub: sub), composite)
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
        let path = environment.path
        let current = currentRevision
        return try environment.read { txn throws(StorageError) in
            shape(request, try liveKeys(txn, request, atOrBefore: at, path), revision: current)
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
        let path = environment.path
        return try txn.withCursor(keysDB) { cursor throws(StorageError) in
            try Self.newest(cursor, key, atOrBefore: main, path)
        }
    }

    /// Seek to the last version of `key` not after `main`: position at the
    /// first version after it, then step back one.
    static func newest(_ cursor: LMDBCursor, _ key: [UInt8], atOrBefore main: Int64, _ path: String) throws(StorageError) -> (kv: KeyValue, tombstone: Bool)? {
        let slot = KeyEncoding.slot(key)
        let hit = try cursor.seek(atLeast: KeyEncoding.composite(slot: slot, main: main, sub: .max))
        guard let (composite, bytes) = try cursor.previous(afterMiss: hit == nil) else { return nil }
        // No slot is a prefix of another (see KeyEncoding), so this is `key`'s.
        guard composite.count == slot.count + KeyEncoding.revisionBytes, composite.starts(with: slot) else { return nil }
        guard let record = KeyEncoding.decode(composite: composite, record: bytes) else {
            throw .corrupt(path: path + "/data.mdb", detail: "a version record fails its checksum")
        }
        precondition(record.key == key, "slot of one key holds another")
        return (record.keyValue, record.tombstone)
    }

    /// Live keys in `request`'s range as of revision `main`, in key order.
    /// Per key: one seek to its newest version at `main`, one past its
    /// versions to the next key; never decoding the history between. A
    /// group of long keys (see `KeyEncoding`) is read whole and sorted.
    func liveKeys(_ txn: LMDBTransaction, _ request: RangeRequest, atOrBefore main: Int64, _ path: String) throws(StorageError) -> [KeyValue] {
        try txn.withCursor(keysDB) { cursor throws(StorageError) in
            if request.rangeEnd.isEmpty {
                guard let (kv, tombstone) = try Self.newest(cursor, request.key, atOrBefore: main, path), !tombstone else { return [] }
                return [kv]
            }
            var result: [KeyValue] = []
            var position = KeyEncoding.rangeStart(request.key)
            walk: while let (composite, bytes) = try cursor.seek(atLeast: position) {
                guard let version = KeyEncoding.parse(composite) else {
                    throw .corrupt(path: path + "/data.mdb", detail: "undecodable version key")
                }
                let keys: [[UInt8]]
                switch version.kind {
                case .short(let key):
                    keys = [key]
                    position = KeyEncoding.composite(slot: version.slot, main: .max, sub: .max)
                case .long(let groupBytes):
                    let group = version.slot.prefix(groupBytes)
                    keys = try Self.groupKeys(cursor, group, firstRecord: bytes, of: composite, path)
                    position = KeyEncoding.pastGroup(group)
                }
                for key in keys {
                    if request.isPastEnd(key) { break walk }
                    if request.contains(key), let (kv, tombstone) = try Self.newest(cursor, key, atOrBefore: main, path), !tombstone {
                        result.append(kv)
                    }
                }
            }
            return result
        }
    }

    /// Every key of a group of long keys, in key order. The cursor stands
    /// on the group's first version (`first`, whose record is `firstRecord`).
    static func groupKeys(_ cursor: LMDBCursor, _ group: ArraySlice<UInt8>, firstRecord: [UInt8], of first: [UInt8], _ path: String) throws(StorageError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var entry: (key: [UInt8], value: [UInt8])? = (first, firstRecord)
        while let (composite, bytes) = entry, composite.starts(with: group) {
            guard let record = KeyEncoding.decode(composite: composite, record: bytes) else {
                throw .corrupt(path: path + "/data.mdb", detail: "a version record fails its checksum")
            }
            keys.append(record.key)
            entry = try cursor.seek(atLeast: KeyEncoding.composite(slot: record.slot, main: .max, sub: .max))
        }
        precondition(!keys.isEmpty, "a group with no keys")
        keys.sort { $0.lexicographicallyPrecedes($1) }
        return keys
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
    /// once, and a crash part-way resumes it on open.
    public func beginCompaction(to revision: Int64) throws(StorageError) {
        if revision <= compactedRevision { throw .compacted(requested: revision, compacted: compactedRevision) }
        if revision > currentRevision { throw .futureRevision(requested: revision, current: currentRevision) }
        try environment.write { txn throws(StorageError) in
            try txn.put(metaDB, Self.compactedKey, KeyEncoding.bigEndian(revision))
            try txn.put(metaDB, Self.compactionPendingKey, [])
        }
        compactedRevision = revision
        compactionCursor = []
    }

    /// Compact the next batch of keys in one LMDB transaction; false when done.
    public func compactionStep() throws(StorageError) -> Bool {
        guard let start = compactionCursor else { return false }
        let revision = compactedRevision
        let batchKeys = settings.compactionBatchKeys
        let file = directory + "/data.mdb"
        let next = try environment.write { txn throws(StorageError) -> [UInt8]? in
            var doomed: [(composite: [UInt8], main: Int64, sub: Int64)] = []
            var groupSlot: ArraySlice<UInt8>?
            var keys = 0
            var resume: [UInt8]?
            var keep: (composite: [UInt8], main: Int64, sub: Int64, tombstone: Bool)?
            func closeGroup() {
                if let k = keep, k.tombstone { doomed.append((k.composite, k.main, k.sub)) }
                keep = nil
            }
            try txn.scan(keysDB, from: start) { composite, bytes throws(StorageError) in
                guard let record = KeyEncoding.decode(composite: composite, record: bytes) else {
                    throw .corrupt(path: file, detail: "a version record fails its checksum")
                }
                if record.slot != groupSlot {
                    closeGroup()
                    if keys == batchKeys {
                        resume = Array(record.slot)
                        return false
                    }
                    groupSlot = record.slot
                    keys += 1
                }
                let (main, sub) = (record.modRevision, record.sub)
                guard main <= revision else { return true }
                if let k = keep { doomed.append((k.composite, k.main, k.sub)) }
                keep = (composite, main, sub, record.tombstone)
                return true
            }
            if resume == nil { closeGroup() }
            for d in doomed {
                try txn.delete(keysDB, d.composite)
                try txn.delete(revisionsDB, KeyEncoding.revision(main: d.main, sub: d.sub))
            }
            if resume == nil { try txn.delete(metaDB, Self.compactionPendingKey) }
            return resume
        }
        compactionCursor = next
        return next != nil
    }

}
