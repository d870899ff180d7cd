import GRPCCore
import Storage

/// The errors clients see, with etcd's gRPC status codes and message
/// strings (etcd's api/v3rpc/rpctypes), so retry logic written for etcd
/// behaves the same against Ballot.
public enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    case compacted
    case futureRevision
    case noLeader
    /// A read waiting for its read index when the term or leader changed
    /// (the consensus core forgets such reads): the client may retry at once.
    case leaderChanged
    case timeout
    case requestTooLarge
    case tooManyOperations
    case duplicateKey
    case emptyKey
    case keyNotFound
    case valueProvided
    case leaseProvided
    case leaseNotFound
    case leaseExists
    case leaseTTLTooLarge
    case noSpace
    case memberExists
    case badLeaderTransferee
    case peerURLExists
    case memberNotFound
    case memberNotLearner
    case learnerNotReady
    case unhealthy
    case stopped
    case notCapable
    case tooManyRequests
    /// A request etcd would accept but Ballot does not serve yet.
    case unimplemented(String)
    case invalid(String)
    case `internal`(String)

    public var code: RPCError.Code {
        switch self {
        case .compacted, .futureRevision: .outOfRange
        case .noLeader, .leaderChanged, .timeout, .stopped: .unavailable
        case .requestTooLarge, .tooManyOperations, .duplicateKey, .emptyKey, .valueProvided, .leaseProvided, .invalid:
            .invalidArgument
        case .keyNotFound: .invalidArgument
        case .leaseNotFound: .notFound
        case .leaseExists: .failedPrecondition
        case .leaseTTLTooLarge: .outOfRange
        case .noSpace: .resourceExhausted
        case .memberExists, .peerURLExists, .memberNotLearner, .learnerNotReady, .badLeaderTransferee: .failedPrecondition
        case .memberNotFound: .notFound
        case .unhealthy: .unavailable
        case .notCapable: .unavailable
        case .tooManyRequests: .resourceExhausted
        case .unimplemented: .unimplemented
        case .internal: .internalError
        }
    }

    public var description: String {
        switch self {
        case .compacted: "etcdserver: mvcc: required revision has been compacted"
        case .futureRevision: "etcdserver: mvcc: required revision is a future revision"
        case .noLeader: "etcdserver: no leader"
        case .leaderChanged: "etcdserver: leader changed"
        case .timeout: "etcdserver: request timed out"
        case .requestTooLarge: "etcdserver: request is too large"
        case .tooManyOperations: "etcdserver: too many operations in txn request"
        case .duplicateKey: "etcdserver: duplicate key given in txn request"
        case .emptyKey: "etcdserver: key is not provided"
        case .keyNotFound: "etcdserver: key not found"
        case .valueProvided: "etcdserver: value is provided"
        case .leaseProvided: "etcdserver: lease is provided"
        case .leaseNotFound: "etcdserver: requested lease not found"
        case .leaseExists: "etcdserver: lease already exists"
        case .leaseTTLTooLarge: "etcdserver: too large lease TTL"
        case .noSpace: "etcdserver: mvcc: database space exceeded"
        case .memberExists: "etcdserver: member ID already exist"
        case .badLeaderTransferee: "etcdserver: bad leader transferee"
        case .peerURLExists: "etcdserver: Peer URLs already exists"
        case .memberNotFound: "etcdserver: member not found"
        case .memberNotLearner: "etcdserver: can only promote a learner member"
        case .learnerNotReady: "etcdserver: can only promote a learner member which is in sync with leader"
        case .unhealthy: "etcdserver: unhealthy cluster"
        case .stopped: "etcdserver: server stopped"
        case .notCapable: "etcdserver: not capable"
        case .tooManyRequests: "etcdserver: too many requests"
        case .unimplemented(let what): "ballot: \(what) is not implemented yet"
        case .invalid(let message): message
        case .internal(let message): "ballot: internal error: \(message)"
        }
    }

    public var rpcError: RPCError { RPCError(code: code, message: description) }

    /// The error a client sees for a storage failure.
    public init(_ error: StorageError) {
        self = switch error {
        case .compacted: .compacted
        case .futureRevision: .futureRevision
        case .emptyKey: .emptyKey
        case .noSpace: .noSpace
        case .requestTooLarge: .requestTooLarge
        case .keyNotFound: .keyNotFound
        case .valueProvided: .valueProvided
        case .leaseProvided: .leaseProvided
        case .tooManyOperations: .tooManyOperations
        case .duplicateKey: .duplicateKey
        case .keyTooLarge, .valueTooLarge: .requestTooLarge
        case .txnTooDeep: .invalid("etcdserver: " + error.description)
        case .leaseNotFound: .leaseNotFound
        case .leaseExists: .leaseExists
        case .lmdb, .io, .corrupt, .wrongDataDirectory, .olderLayout: .internal(error.description)
        }
    }

    /// Carried inside a `CommandResult` from the member that applied it.
    public init(code: UInt32, message: String) {
        let known: [EtcdError] = [
            .compacted, .futureRevision, .noLeader, .leaderChanged, .timeout, .requestTooLarge, .tooManyOperations, .duplicateKey,
            .emptyKey, .keyNotFound, .valueProvided, .leaseProvided, .leaseNotFound, .leaseExists, .leaseTTLTooLarge,
            .noSpace, .memberExists, .peerURLExists, .memberNotFound, .memberNotLearner, .learnerNotReady, .unhealthy,
            .stopped, .notCapable, .tooManyRequests,
        ]
        if let match = known.first(where: { $0.description == message }) {
            self = match
        } else if code == UInt32(RPCError.Code.invalidArgument.rawValue) {
            self = .invalid(message)
        } else {
            self = .internal(message)
        }
    }
}
