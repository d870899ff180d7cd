import GRPCCore

/// Gives `AuthAudit` every refusal a call served through grpc-swift ends
/// with (the fast unary KV calls report theirs in `UnaryRoute`), with its
/// caller and address. Authenticate records its own failures, with the
/// user name its request carries, and so does a watch refused at creation
/// (its stream goes on); both find the address in `RequestCredentials`.
struct AuditInterceptor: ServerInterceptor {
    let node: Node

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.descriptor.method != "Authenticate" else { return try await next(request, context) }
        let (node, metadata) = (self.node, request.metadata)
        return try await callObservingEnd(next, request, context) { error, _ in
            guard let error = error as? RPCError else { return }
            node.auditRefusal(error, method: context.descriptor.fullyQualifiedMethod, token: RequestCredentials.token(in: metadata),
                              commonName: RequestCredentials.commonName(in: metadata), remote: RequestCredentials.clientAddress(context, metadata))
        }
    }
}
