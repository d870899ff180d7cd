import GRPCCore

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
        if request.metadata[stringValues: Self.metadataKey].contains("true"), node.status.leader == nil {
            throw EtcdError.noLeader.rpcError
        }
        return try await next(request, context)
    }
}
