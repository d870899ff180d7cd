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
    /// etcd's auth store refused (users, roles, tokens, permissions).
    case auth(AuthFailure)
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
        case .auth(let failure): failure.code
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
        case .auth(let failure): failure.description
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
        ] + AuthFailure.allCases.map { .auth($0) }
        if let match = known.first(where: { $0.description == message }) {
            self = match
        } else if code == UInt32(RPCError.Code.invalidArgument.rawValue) {
            self = .invalid(message)
        } else {
            self = .internal(message)
        }
    }
}

/// etcd's auth errors (auth/store.go), with the gRPC codes and messages
/// clients see (rpctypes): clients match these strings to decide whether to
/// authenticate again, so they are etcd's byte for byte.
public enum AuthFailure: String, Error, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case rootUserNotExist = "etcdserver: root user does not exist"
    case rootRoleNotExist = "etcdserver: root user does not have root role"
    case userAlreadyExist = "etcdserver: user name already exists"
    case userEmpty = "etcdserver: user name is empty"
    case userNotFound = "etcdserver: user name not found"
    case roleAlreadyExist = "etcdserver: role name already exists"
    case roleNotFound = "etcdserver: role name not found"
    case roleEmpty = "etcdserver: role name is empty"
    case authFailed = "etcdserver: authentication failed, invalid user ID or password"
    case permissionDenied = "etcdserver: permission denied"
    case roleNotGranted = "etcdserver: role is not granted to the user"
    case permissionNotGranted = "etcdserver: permission is not granted to the role"
    case authNotEnabled = "etcdserver: authentication is not enabled"
    case invalidAuthToken = "etcdserver: invalid auth token"
    case invalidAuthManagement = "etcdserver: invalid auth management"
    case authOldRevision = "etcdserver: revision of auth store is old"
    case permissionNotGiven = "etcdserver: permission not given"
    case noPasswordUser = "auth: authentication failed, password was given for no password user"

    public var description: String { rawValue }

    public var code: RPCError.Code {
        switch self {
        case .rootUserNotExist, .rootRoleNotExist, .userAlreadyExist, .userNotFound, .roleAlreadyExist, .roleNotFound,
             .roleNotGranted, .permissionNotGranted, .authNotEnabled:
            .failedPrecondition
        case .userEmpty, .roleEmpty, .authFailed, .invalidAuthManagement, .authOldRevision, .permissionNotGiven: .invalidArgument
        case .permissionDenied: .permissionDenied
        case .invalidAuthToken: .unauthenticated
        // etcd 3.4 maps this one to no gRPC error: grpc-go sends it as Unknown.
        case .noPasswordUser: .unknown
        }
    }

    /// etcd's internal text for the same failure ("auth: ..."), which its
    /// Maintenance admin calls return unconverted (as gRPC's Unknown).
    public var internalText: String {
        switch self {
        case .rootUserNotExist: "auth: root user does not exist"
        case .rootRoleNotExist: "auth: root user does not have root role"
        case .userAlreadyExist: "auth: user already exists"
        case .userEmpty: "auth: user name is empty"
        case .userNotFound: "auth: user not found"
        case .roleAlreadyExist: "auth: role already exists"
        case .roleNotFound: "auth: role not found"
        case .roleEmpty: "auth: role name is empty"
        case .authFailed: "auth: authentication failed, invalid user ID or password"
        case .permissionDenied: "auth: permission denied"
        case .roleNotGranted: "auth: role is not granted to the user"
        case .permissionNotGranted: "auth: permission is not granted to the role"
        case .authNotEnabled: "auth: authentication is not enabled"
        case .invalidAuthToken: "auth: invalid auth token"
        case .invalidAuthManagement: "auth: invalid auth management"
        case .authOldRevision: "auth: revision in header is old"
        case .permissionNotGiven: "auth: permission not given"
        case .noPasswordUser: rawValue
        }
    }
}
