/// Tunables of the MVCC store, each with a named default and limit.
public struct MVCCSettings: Sendable, Equatable {
    public static let mapSizeBytesDefault = 8 << 30
    public static let mapSizeBytesRange = (1 << 20)...(1 << 40)
    /// The LMDB map: the most the database file may grow to.
    public var mapSizeBytes = mapSizeBytesDefault

    public static let keyBytesMaxDefault = 3 << 19
    /// The largest key; longer ones are refused. etcd bounds keys only by
    /// the request limit, and so does the server (--max-request-bytes).
    public var keyBytesMax = keyBytesMaxDefault

    public static let valueBytesMaxDefault = 3 << 19
    /// The largest value (etcd's default request limit, 1.5 MiB).
    public var valueBytesMax = valueBytesMaxDefault

    public static let quotaBytesDefault = 2 << 30
    /// The database size at which writes are refused (etcd's
    /// --quota-backend-bytes): the NOSPACE alarm. Must stay below the map size.
    public var quotaBytes = quotaBytesDefault

    public static let compactionBatchKeysDefault = 1_000
    /// Keys compacted per LMDB transaction, so a big compaction does not stall writes.
    public var compactionBatchKeys = compactionBatchKeysDefault

    public static let requestBytesMaxDefault = 3 << 19
    /// Key and value bytes in one write request or transaction (etcd's
    /// --max-request-bytes, 1.5 MiB by default).
    public var requestBytesMax = requestBytesMaxDefault

    public static let txnOperationsMaxDefault = 128
    /// Operations in one transaction, nested ones included (etcd's --max-txn-ops).
    public var txnOperationsMax = txnOperationsMaxDefault

    public static let txnDepthMaxDefault = 64
    /// How deeply transactions may nest. etcd sets no limit; the protobuf
    /// decoder refuses messages nested 100 deep (about 50 transactions), so
    /// this only bounds the validator's recursion.
    public var txnDepthMax = txnDepthMaxDefault

    /// Check every record's checksum when opening, so a damaged file is
    /// refused at start rather than found by a read. Costs a full scan.
    public var verifyOnOpen = true

    /// Sync every commit. Ballot's durability comes from its write-ahead log,
    /// which replays what LMDB lost; turning this off trades LMDB's own
    /// crash safety for speed and is meant for tests and benchmarks.
    public var syncEachCommit = true

    /// Refuse a put naming a lease the store has not granted (etcd's
    /// "requested lease not found"), checked inside the write transaction.
    /// The server turns it on; the store alone leaves leases opaque.
    public var leasesMustExist = false

    public init() {}
}
