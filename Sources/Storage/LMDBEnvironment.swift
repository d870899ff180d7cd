import CLMDB
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

    static let databasesMax: UInt32 = 16

    init(directory: String, mapSizeBytes: Int, databaseNames: [String], durability: CommitDurability = .full) throws(StorageError) {
        precondition(databaseNames.count <= Int(Self.databasesMax), "raise databasesMax")
        path = directory
        var env: OpaquePointer?
        try Self.check(mdb_env_create(&env), "env_create", directory)
        handle = env!
        do throws(StorageError) {
            try Self.check(mdb_env_set_maxdbs(handle, Self.databasesMax), "env_set_maxdbs", directory)
            try Self.check(mdb_env_set_mapsize(handle, mapSizeBytes), "env_set_mapsize", directory)
            let syncFlags: UInt32 = switch durability {
            case .full: 0
            case .dataOnly: UInt32(MDB_NOMETASYNC)
            case .none: UInt32(MDB_NOSYNC)
            }
            let openCode = mdb_env_open(handle, directory, UInt32(MDB_NOTLS) | syncFlags, 0o644)
            if openCode == MDB_INVALID || openCode == MDB_CORRUPTED || openCode == MDB_VERSION_MISMATCH || openCode == MDB_PAGE_NOTFOUND {
                throw StorageError.corrupt(path: directory + "/data.mdb", detail: "LMDB cannot open it: \(Self.message(for: openCode))")
            }
            try Self.check(openCode, "env_open", directory)
            var opened: [String: MDB_dbi] = [:]
            try write { txn throws(StorageError) in
                for name in databaseNames {
                    var dbi: MDB_dbi = 0
                    try Self.check(mdb_dbi_open(txn.handle, name, UInt32(MDB_CREATE), &dbi), "dbi_open \(name)", directory)
                    opened[name] = dbi
                }
            }
            databases = opened
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
        mdb_env_close(handle)
    }

    deinit { if !closed { mdb_env_close(handle) } }

    static func message(for code: Int32) -> String { String(cString: mdb_strerror(code)) }

    static func check(_ code: Int32, _ operation: String, _ path: String) throws(StorageError) {
        if code != 0 { throw .lmdb(code: code, operation: operation, path: path) }
    }

    /// The outer write transaction of a batch, while one is open.
    private var batchTransaction: OpaquePointer?

    /// Run `body` with every write inside one outer transaction, committed
    /// (and synced) once at the end: many small writes, one fsync. Each
    /// `write` inside runs as a child transaction, so one that throws rolls
    /// back alone; every `read` inside sees the batch so far. Only the
    /// thread that opened the batch may use the environment until it ends.
    func batch<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        precondition(batchTransaction == nil, "batches do not nest")
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(handle, nil, 0, &txn), "txn_begin(batch)", path)
        batchTransaction = txn
        do {
            let result = try body()
            batchTransaction = nil
            try Self.check(mdb_txn_commit(txn), "txn_commit(batch)", path)
            return result
        } catch {
            batchTransaction = nil
            mdb_txn_abort(txn)
            throw error
        }
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
    /// `MDB_NOSYNC` left unsynced). Safe beside a writer on another thread:
    /// whatever was committed before the call is durable when it returns.
    func sync() throws(StorageError) {
        try Self.check(mdb_env_sync(handle, 1), "env_sync", path)
    }

    /// Bytes of the data file in use.
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
        try LMDBEnvironment.check(code, "put", path)
    }

    func delete(_ db: MDB_dbi, _ key: [UInt8]) throws(StorageError) {
        var code: Int32 = 0
        key.withUnsafeBytes { k in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            code = mdb_del(handle, db, &keyVal, nil)
        }
        if code == MDB_NOTFOUND { return }
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
