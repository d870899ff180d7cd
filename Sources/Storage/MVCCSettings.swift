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
    /// Versions examined per LMDB transaction of a compaction (etcd's
    /// --experimental-compaction-batch-limit), so a big compaction does not stall writes.
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

    /// What each commit waits for on disk. Ballot's durability comes from
    /// its write-ahead log, which replays whatever commits the store lost,
    /// so the store needs commits that are never torn, not commits that are
    /// never lost: `.dataOnly` (the server's) gives that with one fdatasync.
    public var commitDurability = CommitDurability.full

    /// `.checkpointed`: how long commits may go unflushed. Longer costs
    /// more replay after a crash, more pages kept from reuse meanwhile
    /// (the checkpoint's pages stay pinned, so every commit's copy-on-write
    /// pages are new ones) and a bigger flush each time, which a log's
    /// fsyncs on the same disk wait behind (a single client's put p99 was
    /// 3.7-3.9 ms at 100 ms, 1.8-2.1 ms at 10 ms); shorter costs more flushes.
    public var checkpointInterval = MVCCSettings.checkpointIntervalDefault
    public static let checkpointIntervalDefault = Duration.milliseconds(10)
    public static let checkpointIntervalRange = Duration.milliseconds(1)...Duration.seconds(60)

    /// Refuse a put naming a lease the store has not granted (etcd's
    /// "requested lease not found"), checked inside the write transaction.
    /// The server turns it on; the store alone leaves leases opaque.
    public var leasesMustExist = false

    /// Test-only (power-cut tests): keep `MVCCStore.powerCutImageName`
    /// beside the data file, a copy of the store as a power failure could
    /// leave it at worst: as of its last full flush (`MVCCStore.sync()`, an
    /// open, a replacement by a snapshot, a defragmentation), every commit
    /// since then lost, as if it ran with `.none`. A test that kills a
    /// member and puts this copy in place of the data file shows whether
    /// the log still replays everything the store lost. Costs a full copy
    /// per flush.
    @_spi(FaultInjection) public var keepsPowerCutImage = false

    /// Test-only: checkpoints flush and save the meta pages but keep no
    /// reader on the state they saved, so LMDB may reuse its pages: the
    /// bug the checkpoint tests must catch.
    @_spi(FaultInjection) public var checkpointsForgetToPin = false

    public init() {}
}

/// How an LMDB commit reaches the disk.
public enum CommitDurability: Sendable, Equatable {
    /// LMDB's default: the data pages synced, then the meta page synced.
    /// A returned commit survives a power failure. Two flushes per commit.
    case full
    /// LMDB's `MDB_NOMETASYNC`: the data pages synced, the meta page written
    /// but not synced (the next commit's flush, or `MVCCStore.sync()`,
    /// carries it). A power failure may undo the last commit, never tear
    /// one: the store opens at the commit before. One flush per commit.
    case dataOnly
    /// LMDB's `MDB_NOSYNC`: nothing synced. A process crash loses nothing
    /// (the page cache survives it) but a power failure may corrupt the
    /// file. For tests and benchmarks only.
    case none
    /// Commits sync nothing; a checkpoint (`MVCCStore.sync()`, and
    /// `MVCCStore.checkpointIfDue()` once `checkpointInterval` passed)
    /// flushes everything at once and becomes the state the store opens at
    /// after a power failure: never torn, at most the commits since the
    /// last checkpoint undone (`LMDBCheckpoint`). Also the state it opens
    /// at after a crash of the process, so what those commits applied
    /// must be replayed from elsewhere (the server's write-ahead log). One
    /// flush per checkpoint instead of one per commit, as etcd commits its
    /// backend only every 100 ms.
    case checkpointed
}
