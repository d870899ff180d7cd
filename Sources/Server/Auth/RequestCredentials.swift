import GRPCCore
import NIOHPACK

/// The credentials a request carries, as etcd reads them: gRPC metadata
/// `token`, else `authorization` (what etcd's gateway forwards from the
/// HTTP header). Set for the handling task by `CredentialsInterceptor`
/// (calls through grpc-swift) or by `UnaryCalls` (calls answered on the
/// connection's loop), read by the services when they ask the node who
/// is calling (`Node.caller()`).
enum RequestCredentials {
    @TaskLocal static var token: String?

    static let tokenKey = "token"
    static let authorizationKey = "authorization"

    static func token(in metadata: Metadata) -> String? {
        for key in [tokenKey, authorizationKey] {
            for value in metadata[stringValues: key] { return value }
        }
        return nil
    }

    static func token(in headers: HPACKHeaders) -> String? {
        headers.first(name: tokenKey) ?? headers.first(name: authorizationKey)
    }
}

/// Makes a call's token the handling task's `RequestCredentials.token`.
struct CredentialsInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard let token = RequestCredentials.token(in: request.metadata) else { return try await next(request, context) }
        var response = try await RequestCredentials.$token.withValue(token) { try await next(request, context) }
        // A streaming call (Watch) runs its handler in the response's
        // producer, after this returns: give it the token too.
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in try await RequestCredentials.$token.withValue(token) { try await producer(writer) } }
            response.accepted = .success(contents)
        }
        return response
    }
}
