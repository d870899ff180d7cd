import EtcdAPI
import StateMachine
import Storage

// What every etcd service handler shares.

/// Runs a handler, turning Ballot's errors into etcd's gRPC statuses.
func rpc<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw rpcStatus(error)
    }
}

/// `rpc` for a handler that does not wait.
func rpcNow<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw rpcStatus(error)
    }
}

/// Ballot's errors as etcd's gRPC statuses; other errors as they are.
func rpcStatus(_ error: any Error) -> any Error {
    switch error {
    case let error as EtcdError: error.rpcError
    case let error as StorageError: EtcdError(error).rpcError
    default: error
    }
}

extension Node {
    /// etcd's response header: cluster, member, revision, raft term.
    func header(revision: Int64) -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID
        header.memberID = id.rawValue
        header.revision = revision
        header.raftTerm = status.term.rawValue
        return header
    }
}
