import GRPCCore
import StateMachine

/// etcd's "require leader" contract: a client that sends the metadata
/// `hasleader: true` (clientv3's `WithRequireLeader`, which etcdctl's watch
/// uses) is refused at once with "no leader" while this member knows of
/// none, instead of waiting for an election like every other request.
struct RequireLeaderInterceptor: ServerInterceptor {
    static let metadataKey = "hasleader"
    let node: Node

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if Self.refuses(askedForLeader: request.metadata[stringValues: Self.metadataKey].contains("true"), node: node) {
            throw EtcdError.noLeader.rpcError
        }
        return try await next(request, context)
    }

    /// Whether a call is refused: it asked for a leader and none is known.
    /// (The client port's unary KV calls, which skip grpc-swift's
    /// interceptors, ask this too: `UnaryCalls`.)
    static func refuses(askedForLeader: Bool, node: Node) -> Bool {
        askedForLeader && node.status.leader == nil
    }
}
