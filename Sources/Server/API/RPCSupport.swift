import EtcdAPI
import GRPCCore
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
    case let error as ReadConsistencyError: error.rpcError
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

/// How a call served through grpc-swift ends, for the interceptors that
/// watch it (metrics, audit): `ended` hears the error (nil: success) once,
/// and whether it came while the response was being produced (a streaming
/// call's handler runs there, after `next` returned).
typealias CallEnded = @Sendable (_ error: (any Error)?, _ producing: Bool) -> Void

/// `next(request, context)`, telling `ended` how the call ends.
func callObservingEnd<Input: Sendable, Output: Sendable>(
    _ next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>,
    _ request: StreamingServerRequest<Input>, _ context: ServerContext, ended: @escaping CallEnded
) async throws -> StreamingServerResponse<Output> {
    do {
        var response = try await next(request, context)
        switch response.accepted {
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    ended(nil, true)
                    return trailers
                } catch {
                    ended(error, true)
                    throw error
                }
            }
            response.accepted = .success(contents)
        case .failure(let error):
            ended(error, false)
        }
        return response
    } catch {
        ended(error, false)
        throw error
    }
}
