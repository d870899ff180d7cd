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
    /// The common name of the client's verified TLS certificate, when
    /// `--client-cert-auth` makes it the user of calls without a token.
    @TaskLocal static var commonName: String?
    /// The client's address, for the audit of a refusal the handler makes
    /// itself (`AuthAudit`).
    @TaskLocal static var clientAddress: String?

    /// Where the JSON gateway passes its HTTP client's address on to the
    /// in-process call it makes; believed only from in-process calls, so a
    /// gRPC client cannot choose the address its refusals are logged with.
    static let gatewayClientKey = "ballot-gateway-client"

    /// The address of a call's client: the gateway's HTTP client for an
    /// in-process call the gateway made, else the connection's peer.
    static func clientAddress(_ context: ServerContext, _ metadata: Metadata) -> String {
        guard context.remotePeer.hasPrefix("in-process"), let client = metadata[stringValues: gatewayClientKey].first(where: { _ in true }) else {
            return context.remotePeer
        }
        return "gateway " + client
    }

    /// Where the client port's HTTP/2 handler passes the verified common
    /// name along with a call's headers; never taken from a client (the
    /// handler and the JSON gateway drop any client header of this name).
    static let commonNameKey = "ballot-verified-client-cn"

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

    static func commonName(in metadata: Metadata) -> String? {
        metadata[stringValues: commonNameKey].first(where: { _ in true })
    }

    static func commonName(in headers: HPACKHeaders) -> String? {
        headers.first(name: commonNameKey)
    }

    /// Run `body` with a call's credentials (and its client's address) as the task's.
    static func with<T>(token: String?, commonName: String?, clientAddress: String? = nil, _ body: () async throws -> T) async rethrows -> T {
        try await $token.withValue(token) {
            try await $commonName.withValue(commonName) { try await $clientAddress.withValue(clientAddress) { try await body() } }
        }
    }
}

/// Makes a call's token, certificate name and client address the handling
/// task's `RequestCredentials`.
struct CredentialsInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let token = RequestCredentials.token(in: request.metadata)
        let commonName = RequestCredentials.commonName(in: request.metadata)
        let address = RequestCredentials.clientAddress(context, request.metadata)
        var response = try await RequestCredentials.with(token: token, commonName: commonName, clientAddress: address) { try await next(request, context) }
        // A streaming call (Watch) runs its handler in the response's
        // producer, after this returns: give it the token too.
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await RequestCredentials.with(token: token, commonName: commonName, clientAddress: address) { try await producer(writer) }
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

/// On the member's in-process client (`LocalClient`, which the Lock and
/// Election services are built on): a call made while serving a client's
/// call carries that client's token or certificate name, so the KV, Lease
/// and Watch calls it makes are judged as the client's own, as etcd's
/// server-side lock and election (whose in-process client passes the
/// incoming context on) are. A call that names credentials of its own (the
/// JSON gateway's) keeps them.
struct ForwardedCredentialsInterceptor: ClientInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>, context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard RequestCredentials.token != nil || RequestCredentials.commonName != nil,
              RequestCredentials.token(in: request.metadata) == nil, RequestCredentials.commonName(in: request.metadata) == nil
        else { return try await next(request, context) }
        var request = request
        if let token = RequestCredentials.token { request.metadata.addString(token, forKey: RequestCredentials.tokenKey) }
        if let name = RequestCredentials.commonName { request.metadata.addString(name, forKey: RequestCredentials.commonNameKey) }
        return try await next(request, context)
    }
}
