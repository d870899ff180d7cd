import EtcdAPI
import Storage

// What every etcd service handler shares.

/// Runs a handler, turning Ballot's errors into etcd's gRPC statuses.
func rpc<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EtcdError {
        throw error.rpcError
    } catch let error as StorageError {
        throw EtcdError(error).rpcError
    }
}

/// `rpc` for a handler that does not wait.
func rpcNow<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as EtcdError {
        throw error.rpcError
    } catch let error as StorageError {
        throw EtcdError(error).rpcError
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
