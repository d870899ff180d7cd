import CLMDB

extension LMDBEnvironment {
    /// Read one value from an LMDB file without changing a byte of it: no
    /// lock file, no database created. Used on a snapshot copy to learn what
    /// it holds before its checksum is taken.
    static func peek(file: String, mapSizeBytes: Int, database: String, key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "env_create", file)
        defer { mdb_env_close(env) }
        try check(mdb_env_set_maxdbs(env, databasesMax), "env_set_maxdbs", file)
        try check(mdb_env_set_mapsize(env, mapSizeBytes), "env_set_mapsize", file)
        let flags = UInt32(MDB_RDONLY) | UInt32(MDB_NOSUBDIR) | UInt32(MDB_NOLOCK) | UInt32(MDB_NOTLS)
        let openCode = mdb_env_open(env, file, flags, 0o644)
        if openCode == MDB_INVALID || openCode == MDB_CORRUPTED || openCode == MDB_VERSION_MISMATCH {
            throw .corrupt(path: file, detail: "LMDB cannot open it: \(message(for: openCode))")
        }
        try check(openCode, "env_open", file)
        var txn: OpaquePointer?
        try check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "txn_begin(read)", file)
        defer { mdb_txn_abort(txn) }
        var dbi: MDB_dbi = 0
        let dbiCode = mdb_dbi_open(txn, database, 0, &dbi)
        if dbiCode == MDB_NOTFOUND { return nil }
        try check(dbiCode, "dbi_open \(database)", file)
        return try LMDBTransaction(handle: txn!, path: file).get(dbi, key)
    }
}
