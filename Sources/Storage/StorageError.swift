import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a storage operation failed. Messages follow etcd's where etcd has
/// one, so clients' retry logic behaves the same.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// LMDB refused an operation; `code` is its error number.
    case lmdb(code: Int32, operation: String, path: String)
    /// A system call failed.
    case io(errno: Int32, operation: String, path: String)
    case compacted(requested: Int64, compacted: Int64)
    case futureRevision(requested: Int64, current: Int64)
    /// A file holds something this code did not write: refuse, never repair.
    case corrupt(path: String, detail: String)
    case keyTooLarge(bytes: Int, limit: Int)
    case valueTooLarge(bytes: Int, limit: Int)
    case emptyKey
    /// The data directory belongs to another cluster or format.
    case wrongDataDirectory(path: String, found: String, expected: String)
    /// The store's file holds an older layout than this code reads.
    case olderLayout(path: String, found: Int, expected: Int)
    /// The database reached its quota; only reads, deletes and compaction work.
    case noSpace(usedBytes: Int, quotaBytes: Int)
    case requestTooLarge(bytes: Int, limit: Int)
    case keyNotFound
    case valueProvided
    case leaseProvided
    case tooManyOperations(limit: Int)
    case duplicateKey
    case txnTooDeep(limit: Int)
    case leaseNotFound
    case leaseExists

    public var description: String {
        switch self {
        case .lmdb(let code, let operation, let path):
            "LMDB \(operation) failed on \(path): \(LMDBEnvironment.message(for: code)) (code \(code))"
        case .io(let code, let operation, let path):
            "\(operation) failed on \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .compacted: "mvcc: required revision has been compacted"
        case .futureRevision: "mvcc: required revision is a future revision"
        case .corrupt(let path, let detail):
            "\(path) is corrupt (\(detail)); refusing to start. Restore this member from a peer or a snapshot."
        case .keyTooLarge(let bytes, let limit): "key of \(bytes) bytes exceeds the limit of \(limit)"
        case .valueTooLarge(let bytes, let limit): "value of \(bytes) bytes exceeds the limit of \(limit)"
        case .emptyKey: "etcdserver: key is not provided"
        case .wrongDataDirectory(let path, let found, let expected):
            "\(path) says '\(found)' but this member expects '\(expected)': point --data-dir at this cluster's directory"
        case .olderLayout(let path, let found, let expected):
            "\(path) holds a store of layout \(found), which this version of Ballot (layout \(expected)) does not read: "
                + "save a snapshot with the version that wrote it (etcdctl snapshot save) and restore it into a new data directory "
                + "(ballot snapshot restore, or etcdctl snapshot restore)"
        case .noSpace: "etcdserver: mvcc: database space exceeded"
        case .requestTooLarge: "etcdserver: request is too large"
        case .keyNotFound: "etcdserver: key not found"
        case .valueProvided: "etcdserver: value is provided"
        case .leaseProvided: "etcdserver: lease is provided"
        case .tooManyOperations: "etcdserver: too many operations in txn request"
        case .duplicateKey: "etcdserver: duplicate key given in txn request"
        case .txnTooDeep(let limit): "transactions nest deeper than \(limit) levels"
        case .leaseNotFound: "etcdserver: requested lease not found"
        case .leaseExists: "etcdserver: lease already exists"
        }
    }
}
