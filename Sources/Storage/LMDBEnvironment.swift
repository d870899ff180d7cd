import CLMDB
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An LMDB environment: one memory-mapped file of named databases.
///
/// A class for identity (it owns the C handle). `@unchecked Sendable`
/// because LMDB environments are safe to share across threads: LMDB
/// serializes write transactions itself, and read transactions opened with
/// `MDB_NOTLS` are not tied to a thread.
final class LMDBEnvironment: @unchecked Sendable {
    let path: String
    private let handle: OpaquePointer
    private(set) var databases: [String: MDB_dbi] = [:]
    let durability: CommitDurability
    /// `.checkpointed`: the read transaction that keeps the last
    /// checkpoint's pages from being overwritten (`LMDBCheckpoint`), and
    /// the file its meta pages are saved in. Touched only under
    /// `checkpointLock` (inside `checkpoint`) or at open and close.
    private var pinned: OpaquePointer?
    private var checkpoints: LMDBCheckpoint.Writer?
    /// One checkpoint at a time.
    private let checkpointLock = NSLock()
    /// When the last checkpoint was taken (nil: none yet), and the LMDB
    /// transaction it made durable; under `checkpointLock` too.
    private var lastCheckpoint: ContinuousClock.Instant?
    private var checkpointedTransaction: Int?
    private let pinsCheckpoints: Bool

    static let databasesMax: UInt32 = 16

    /// `pinsCheckpoints` false is a test-only bug (`MVCCSettings.checkpointsForgetToPin`).
    /// `whenNew` writes a new file's first records, in the transaction
    /// that creates its databases (no commit of its own: a store's size at
    /// birth is what etcd's smallest quotas expect).
    init(directory: String, mapSizeBytes: Int, databaseNames: [String], durability: CommitDurability = .full,
         pinsCheckpoints: Bool = true,
         whenNew: (LMDBTransaction, [String: MDB_dbi]) throws(StorageError) -> Void = { _, _ in }) throws(StorageError) {
        precondition(databaseNames.count <= Int(Self.databasesMax), "raise databasesMax")
        path = directory
        self.durability = durability
        self.pinsCheckpoints = pinsCheckpoints
        var env: OpaquePointer?
        try Self.check(mdb_env_create(&env), "env_create", directory)
        handle = env!
        do throws(StorageError) {
            try Self.check(mdb_env_set_maxdbs(handle, Self.databasesMax), "env_set_maxdbs", directory)
            try Self.check(mdb_env_set_mapsize(handle, mapSizeBytes), "env_set_mapsize", directory)
            let syncFlags: UInt32 = switch durability {
            case .full: 0
            case .dataOnly: UInt32(MDB_NOMETASYNC)
            case .none, .checkpointed: UInt32(MDB_NOSYNC)
            }
            // A power failure since the last checkpoint may have left pages
            // that never arrived: return to the checkpoint, which is whole.
            if durability == .checkpointed { try LMDBCheckpoint.restore(in: directory) }
            let openCode = mdb_env_open(handle, directory, UInt32(MDB_NOTLS) | syncFlags, 0o644)
            if openCode == MDB_INVALID || openCode == MDB_CORRUPTED || openCode == MDB_VERSION_MISMATCH || openCode == MDB_PAGE_NOTFOUND {
                throw StorageError.corrupt(path: directory + "/data.mdb", detail: "LMDB cannot open it: \(Self.message(for: openCode))")
            }
            try Self.check(openCode, "env_open", directory)
            var opened: [String: MDB_dbi] = [:]
            try write { txn throws(StorageError) in
                // A new file's main database names no database yet.
                var main: MDB_dbi = 0
                var stat = MDB_stat()
                try Self.check(mdb_dbi_open(txn.handle, nil, 0, &main), "dbi_open main", directory)
                try Self.check(mdb_stat(txn.handle, main, &stat), "stat main", directory)
                for name in databaseNames {
                    var dbi: MDB_dbi = 0
                    try Self.check(mdb_dbi_open(txn.handle, name, UInt32(MDB_CREATE), &dbi), "dbi_open \(name)", directory)
                    opened[name] = dbi
                }
                if stat.ms_entries == 0 { try whenNew(txn, opened) }
            }
            databases = opened
            if durability == .checkpointed {
                checkpoints = try LMDBCheckpoint.Writer(directory: directory)
                try checkpoint()
            }
        } catch {
            // Every stored property is set, so deinit runs and closes the handle.
            throw error
        }
    }

    private var closed = false

    /// Close now (before replacing the file); using the environment afterwards is a bug.
    func close() {
        precondition(!closed, "LMDB environment closed twice")
        closed = true
        unpinAndClose()
    }

    deinit { if !closed { unpinAndClose() } }

    private func unpinAndClose() {
        if let pinned { mdb_txn_abort(pinned) }
        pinned = nil
        mdb_env_close(handle)
    }

    static func message(for code: Int32) -> String { String(cString: mdb_strerror(code)) }

    static func check(_ code: Int32, _ operation: String, _ path: String) throws(StorageError) {
        if code != 0 { throw .lmdb(code: code, operation: operation, path: path) }
    }

    /// The outer write transaction of a batch, while one is open.
    private var batchTransaction: OpaquePointer?

    /// Whether a batch is open (`openBatch` to `commitBatch`).
    var batchIsOpen: Bool { batchTransaction != nil }

    /// Begin a batch: one outer write transaction, open across calls until
    /// `commitBatch` (or `abortBatch`), on this thread. Each `write` inside
    /// runs as a child transaction, so one that throws rolls back alone;
    /// every `read` inside sees the batch so far. LMDB's writer lock is
    /// held meanwhile, so other writers (a checkpoint's pin) wait for it.
    func openBatch() throws(StorageError) {
        precondition(batchTransaction == nil, "batches do not nest")
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, nil, 0, &txn), "txn_begin(batch)", path)
        batchTransaction = txn
    }

    /// Commit the open batch (synced as the environment's durability says).
    func commitBatch() throws(StorageError) {
        guard let txn = batchTransaction else { preconditionFailure("no batch is open") }
        batchTransaction = nil
        try Self.check(mdb_txn_commit(txn), "txn_commit(batch)", path)
    }

    /// Drop the open batch's writes.
    func abortBatch() {
        guard let txn = batchTransaction else { return }
        batchTransaction = nil
        mdb_txn_abort(txn)
    }

    /// Run `body` in a write transaction, committed (durably, as LMDB syncs
    /// on commit by default) if `body` returns and aborted if it throws.
    /// Inside a batch it is a child transaction, made durable with the batch.
    func write<T>(_ body: (LMDBTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, batchTransaction, 0, &txn), "txn_begin", path)
        let transaction = LMDBTransaction(handle: txn!, path: path)
        do {
            let result = try body(transaction)
            try Self.check(mdb_txn_commit(txn), "txn_commit", path)
            return result
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
    }

    /// `write`, when `inPlace`, for a body whose refusals (a missing key, a
    /// compacted revision...) all come before its first write: after it,
    /// it throws only the environment's own failures (LMDB's, I/O,
    /// corruption), which stop a member. Inside a batch such a body writes
    /// straight into the batch, with no child transaction; outside one, or
    /// when not `inPlace`, this is `write`.
    ///
    /// Why: a child transaction costs LMDB two allocations, a 2 MiB dirty
    /// list and a 1 MiB free list, which glibc maps and unmaps each time in
    /// the server (its mmap threshold is fixed at 128 KiB), and a merge of
    /// its pages into the parent's at commit. One per applied entry, under
    /// 100 writing clients, kept each member's apply thread 42% in the
    /// kernel (BENCHMARKS.md, seventh session).
    ///
    /// A child's throw rolls it back alone; writing in place cannot, so a
    /// refusal after a write (a body breaking the contract above) stops the
    /// process rather than leave a half-applied request in the batch.
    func write<T>(inPlace: Bool, _ body: (LMDBTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        guard inPlace, let batchTransaction else { return try write(body) }
        var writes = 0
        do {
            return try withUnsafeMutablePointer(to: &writes) { counter throws(StorageError) in
                try body(LMDBTransaction(handle: batchTransaction, path: path, writes: counter))
            }
        } catch {
            switch error {
            case .lmdb, .io, .corrupt: break
            default: precondition(writes == 0, "refused (\(error)) after \(writes) writes into the open batch")
            }
            throw error
        }
    }

    /// Run `body` against a consistent read-only view (inside a batch: the
    /// batch's own view, uncommitted writes included).
    func read<T>(_ body: (LMDBTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        if let batchTransaction { return try body(LMDBTransaction(handle: batchTransaction, path: path)) }
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "txn_begin(read)", path)
        defer { mdb_txn_abort(txn) }
        return try body(LMDBTransaction(handle: txn!, path: path))
    }

    /// Run `body` against a read-only view of its own, on a thread that is
    /// not the writer's, while writes (batches included) go on elsewhere:
    /// what it sees is the last commit before it began.
    func readIsolated<T>(_ body: (LMDBTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "txn_begin(read)", path)
        defer { mdb_txn_abort(txn) }
        return try body(LMDBTransaction(handle: txn!, path: path))
    }

    /// Write a compacted, consistent copy of the whole environment to a new
    /// file at `copyPath` (replacing one there), fsynced when `synced`.
    /// LMDB copies from one read transaction; writers are not blocked.
    /// Nothing is left at `copyPath` if it fails.
    func copy(toFile copyPath: String, synced: Bool) throws(StorageError) {
        let fd = Glibc.open(copyPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: copyPath) }
        do throws(StorageError) {
            try Self.check(mdb_env_copyfd2(handle, fd, UInt32(MDB_CP_COMPACT)), "env_copy", copyPath)
            if synced && fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: copyPath) }
        } catch {
            Glibc.close(fd)
            unlink(copyPath)
            throw error
        }
        Glibc.close(fd)
    }

    /// Flush every commit so far to disk (what `MDB_NOMETASYNC` or
    /// `MDB_NOSYNC` left unsynced; a checkpoint when `.checkpointed`). Safe
    /// beside a writer on another thread: whatever was committed before
    /// the call is durable when it returns.
    func sync() throws(StorageError) {
        if durability == .checkpointed {
            try checkpoint()
        } else {
            try Self.check(mdb_env_sync(handle, 1), "env_sync", path)
        }
    }

    /// `.checkpointed`: make every commit so far durable and the state a
    /// power failure returns to (`LMDBCheckpoint`), if the last checkpoint
    /// is at least `interval` old. From any thread, beside a writer on
    /// another: commits wait only for the pin (below), not for the flushes.
    @discardableResult
    func checkpoint(ifOlderThan interval: Duration = .zero) throws(StorageError) -> Bool {
        precondition(durability == .checkpointed, "checkpoints are for .checkpointed stores")
        checkpointLock.lock()
        defer { checkpointLock.unlock() }
        let now = ContinuousClock.now
        if let lastCheckpoint, now - lastCheckpoint < interval { return false }
        // Nothing committed since the last: it is still the state to return
        // to, and an idle member writes nothing.
        var info = MDB_envinfo()
        try Self.check(mdb_env_info(handle, &info), "env_info", path)
        if info.me_last_txnid == checkpointedTransaction { return false }
        // Under LMDB's writer lock (an empty write transaction), so that no
        // commit lands in between: pin the last commit's state with a read
        // transaction, and copy its meta pages.
        var stat = MDB_stat()
        try Self.check(mdb_env_stat(handle, &stat), "env_stat", path)
        var writer: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, nil, 0, &writer), "txn_begin(checkpoint)", path)
        var reader: OpaquePointer?
        let metaPages: [UInt8]
        do throws(StorageError) {
            try Self.check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &reader), "txn_begin(pin)", path)
            metaPages = try checkpoints!.metaPages(pageSize: Int(stat.ms_psize))
        } catch {
            if let reader { mdb_txn_abort(reader) }
            mdb_txn_abort(writer)
            throw error
        }
        mdb_txn_abort(writer)
        // Commits go on meanwhile: none may overwrite a page the pin sees.
        // The pinned state's pages were written before: flushed now.
        do throws(StorageError) {
            try Self.check(mdb_env_sync(handle, 1), "env_sync", path)
            try checkpoints!.save(metaPages)
        } catch {
            mdb_txn_abort(reader)
            throw error
        }
        // Only now, the new state durable and saved, may the old one go.
        if let pinned { mdb_txn_abort(pinned) }
        pinned = pinsCheckpoints ? reader : nil
        checkpointedTransaction = mdb_txn_id(reader)
        if !pinsCheckpoints { mdb_txn_abort(reader) }
        lastCheckpoint = now
        return true
    }

    /// Bytes of the data file's pages that hold data now: `usedBytes`
    /// less the free pages LMDB reuses (its free list, read whole: for
    /// decisions near the quota, not for every commit).
    func inUseBytes() throws(StorageError) -> Int {
        let used = try usedBytes()
        var stat = MDB_stat()
        try Self.check(mdb_env_stat(handle, &stat), "env_stat", path)
        var free = 0
        // A read-only transaction of its own: LMDB opens no cursor on its free
        // list inside a write transaction (an open batch).
        try readIsolated { txn throws(StorageError) in
            var cursor: OpaquePointer?
            // Database 0 is LMDB's free list: transaction ID → [count, page numbers...].
            try Self.check(mdb_cursor_open(txn.handle, 0, &cursor), "cursor_open(free list)", path)
            defer { mdb_cursor_close(cursor) }
            var key = MDB_val(), value = MDB_val()
            while mdb_cursor_get(cursor, &key, &value, MDB_NEXT) == 0 {
                guard value.mv_size >= MemoryLayout<Int>.size, let base = value.mv_data else { continue }
                free += base.loadUnaligned(as: Int.self)
            }
        }
        return max(0, used - free * Int(stat.ms_psize))
    }

    /// Bytes of the data file up to its last page (LMDB's high-water mark).
    func usedBytes() throws(StorageError) -> Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        try Self.check(mdb_env_info(handle, &info), "env_info", path)
        try Self.check(mdb_env_stat(handle, &stat), "env_stat", path)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }
}

/// One LMDB transaction. Valid only inside the closure that received it.
struct LMDBTransaction {
    let handle: OpaquePointer
    let path: String
    /// Where `put` and `delete` count their writes, for `write(inPlace:)`'s check.
    var writes: UnsafeMutablePointer<Int>? = nil

    func get(_ db: MDB_dbi, _ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var result: [UInt8]?
        var code: Int32 = 0
        key.withUnsafeBytes { k in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            var dataVal = MDB_val()
            code = mdb_get(handle, db, &keyVal, &dataVal)
            if code == 0 { result = Self.bytes(dataVal) }
        }
        if code == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(code, "get", path)
        return result
    }

    func put(_ db: MDB_dbi, _ key: [UInt8], _ value: [UInt8]) throws(StorageError) {
        var code: Int32 = 0
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var dataVal = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                code = mdb_put(handle, db, &keyVal, &dataVal, 0)
            }
        }
        writes?.pointee += 1
        try LMDBEnvironment.check(code, "put", path)
    }

    func delete(_ db: MDB_dbi, _ key: [UInt8]) throws(StorageError) {
        var code: Int32 = 0
        key.withUnsafeBytes { k in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            code = mdb_del(handle, db, &keyVal, nil)
        }
        if code == MDB_NOTFOUND { return }
        writes?.pointee += 1
        try LMDBEnvironment.check(code, "del", path)
    }

    /// Visit entries in key order from the first key >= `start` while
    /// `visit` returns true.
    func scan(_ db: MDB_dbi, from start: [UInt8], _ visit: ([UInt8], [UInt8]) throws(StorageError) -> Bool) throws(StorageError) {
        var cursor: OpaquePointer?
        try LMDBEnvironment.check(mdb_cursor_open(handle, db, &cursor), "cursor_open", path)
        defer { mdb_cursor_close(cursor) }
        var keyVal = MDB_val()
        var dataVal = MDB_val()
        var code: Int32 = start.withUnsafeBytes { k in
            keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_cursor_get(cursor, &keyVal, &dataVal, start.isEmpty ? MDB_FIRST : MDB_SET_RANGE)
        }
        while code == 0 {
            if try !visit(Self.bytes(keyVal), Self.bytes(dataVal)) { return }
            code = mdb_cursor_get(cursor, &keyVal, &dataVal, MDB_NEXT)
        }
        if code != MDB_NOTFOUND { try LMDBEnvironment.check(code, "cursor_get", path) }
    }

    /// Run `body` with a cursor on `db`, closed afterwards.
    func withCursor<T>(_ db: MDB_dbi, _ body: (LMDBCursor) throws(StorageError) -> T) throws(StorageError) -> T {
        var cursor: OpaquePointer?
        try LMDBEnvironment.check(mdb_cursor_open(handle, db, &cursor), "cursor_open", path)
        defer { mdb_cursor_close(cursor) }
        return try body(LMDBCursor(handle: cursor!, path: path))
    }

    static func bytes(_ val: MDB_val) -> [UInt8] {
        guard let base = val.mv_data, val.mv_size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: val.mv_size))
    }
}

/// A positioned cursor, for seeks that skip what a scan would visit.
struct LMDBCursor {
    let handle: OpaquePointer
    let path: String

    /// The first entry at or after `key`.
    func seek(atLeast key: [UInt8]) throws(StorageError) -> (key: [UInt8], value: [UInt8])? {
        var keyVal = MDB_val()
        var dataVal = MDB_val()
        let code: Int32 = key.withUnsafeBytes { k in
            keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_cursor_get(handle, &keyVal, &dataVal, MDB_SET_RANGE)
        }
        return try result(code, keyVal, dataVal)
    }

    /// The entry before the current position (or the last one if the cursor
    /// ran off the end).
    func previous(afterMiss: Bool) throws(StorageError) -> (key: [UInt8], value: [UInt8])? {
        var keyVal = MDB_val()
        var dataVal = MDB_val()
        let code = mdb_cursor_get(handle, &keyVal, &dataVal, afterMiss ? MDB_LAST : MDB_PREV)
        return try result(code, keyVal, dataVal)
    }

    private func result(_ code: Int32, _ k: MDB_val, _ v: MDB_val) throws(StorageError) -> (key: [UInt8], value: [UInt8])? {
        if code == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(code, "cursor_get", path)
        return (LMDBTransaction.bytes(k), LMDBTransaction.bytes(v))
    }
}
