import EtcdAPI
import GRPCCore
import NIOCore
import NIOHPACK
import StateMachine
import SwiftProtobuf

/// etcd's unary KV calls (Range, Put, DeleteRange, Txn, Compact) as the
/// client port's HTTP/2 layer answers them itself (`GRPCConnectionHandler`),
/// with what grpc-swift's interceptors would have added: etcd's
/// `hasleader` refusal and the `grpc_server_*` counters. The work is
/// `KVService`'s, the same as over grpc-swift (the JSON gateway).
struct UnaryCalls: Sendable {
    private let routes: [String: UnaryRoute]

    init(kv: KVService, metrics: ServerMetrics) {
        let node = kv.node
        let service = Etcdserverpb_KV.descriptor.fullyQualifiedService
        let list = [
            UnaryRoute.make(Etcdserverpb_KV.Method.Range.descriptor, node: node, metrics: metrics, readsConsistency: true,
                            // A get of one key reads the store on the event loop:
                            // at once if its level waits for nothing, by callback
                            // once its read index is applied otherwise. A span
                            // may read much, so it runs as a task, off the event loop.
                            now: { request, call in
                                guard request.rangeEnd.isEmpty else { return nil }
                                return try kv.rangeNow(request, kv.consistency(of: request, call.consistency), caller: call.caller)
                            },
                            here: { request, call, done in
                                try request.rangeEnd.isEmpty && kv.rangeHere(request, kv.consistency(of: request, call.consistency), caller: call.caller, then: done)
                            },
                            later: { try await kv.range($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Put.descriptor, node: node, metrics: metrics,
                            here: { try kv.putHere($0, caller: $1.caller, then: $2) }, later: { try await kv.put($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.DeleteRange.descriptor, node: node, metrics: metrics,
                            here: { try kv.deleteRangeHere($0, caller: $1.caller, then: $2) }, later: { try await kv.deleteRange($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Txn.descriptor, node: node, metrics: metrics,
                            here: { try kv.txnHere($0, caller: $1.caller, then: $2) }, later: { try await kv.txn($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Compact.descriptor, node: node, metrics: metrics, later: { try await kv.compact($0) }),
        ]
        precondition(list.allSatisfy { $0.service == service }, "the unary routes are the KV service's")
        routes = Dictionary(uniqueKeysWithValues: list.map { ("/\($0.service)/\($0.method)", $0) })
    }

    /// The route for `path` (`/etcdserverpb.KV/Put`), if it is answered here.
    func route(_ path: String) -> UnaryRoute? {
        routes[path]
    }
}

/// What a unary call brings besides its request: its caller when known at
/// once, and (for a route that reads it) the consistency it asked for.
struct UnaryCallContext: Sendable {
    var caller: AuthStore.Caller?
    var consistency: ReadConsistency.Requested
}

/// How a route answers later: with a closure that makes the encoded
/// response, called on the connection's event loop.
typealias UnaryReply = @Sendable (@escaping @Sendable () -> Result<[UInt8], RPCError>) -> Void

/// One unary method: decodes the request, answers, encodes the response.
///
/// Three ways to answer, tried in order: `now` on the event loop (nothing
/// to wait for), `here` by callback from the thread that settles the call
/// (this member leads: no task), `later` as one task (forwarding to the
/// leader, waiting for one, raising the quota alarm).
struct UnaryRoute: Sendable {
    let service: String
    let method: String
    /// Start the call with its request message, headers and connection (its
    /// address is audited if the call is refused): its answer if it has one
    /// now, or nil when `reply` will bring it.
    let start: @Sendable (_ message: [UInt8], _ headers: HPACKHeaders, _ connection: any Channel, _ reply: @escaping UnaryReply)
        -> Result<[UInt8], RPCError>?

    static func make<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ descriptor: MethodDescriptor, node: Node, metrics: ServerMetrics, readsConsistency: Bool = false,
        now: @escaping @Sendable (Request, UnaryCallContext) throws -> Response? = { _, _ in nil },
        here: @escaping @Sendable (Request, UnaryCallContext, @escaping KVService.HereDone<Response>) throws -> Bool = { _, _, _ in false },
        later: @escaping @Sendable (Request) async throws -> Response
    ) -> UnaryRoute {
        let service = descriptor.service.fullyQualifiedService
        let method = descriptor.method
        @Sendable func finished(_ result: Result<Response, any Error>, _ headers: HPACKHeaders, _ connection: any Channel) -> Result<[UInt8], RPCError> {
            let encoded: Result<[UInt8], RPCError>
            switch result.mapError(rpcStatus) {
            case .success(let response):
                do {
                    encoded = .success(try response.serializedBytes())
                } catch {
                    encoded = .failure(RPCError(code: .internalError, message: "grpc: error while marshaling: \(error)"))
                }
            case .failure(let error as RPCError):
                encoded = .failure(error)
            case .failure:
                // grpc-swift's answer to an error that is not an RPCError.
                encoded = .failure(RPCError(code: .unknown, message: "Service method threw an unknown error."))
            }
            let code = encoded.failure.map { MetricsInterceptor.grpcCodeName($0) } ?? "OK"
            metrics.handled(service: service, method: method, type: "unary", code: code)
            if let error = encoded.failure {
                node.auditRefusal(error, method: "\(service)/\(method)", token: RequestCredentials.token(in: headers),
                                  commonName: RequestCredentials.commonName(in: headers), remote: GRPCConnectionHandler.peer(connection.remoteAddress))
            }
            return encoded
        }
        return UnaryRoute(service: service, method: method) { message, headers, connection, reply in
            metrics.started(service: service, method: method, type: "unary")
            if RequireLeaderInterceptor.refuses(askedForLeader: headers[canonicalForm: RequireLeaderInterceptor.metadataKey].contains("true"), node: node) {
                return finished(.failure(EtcdError.noLeader), headers, connection)
            }
            let request: Request
            do {
                request = try Request(serializedBytes: message)
            } catch {
                return finished(.failure(RPCError(code: .internalError, message: "grpc: error unmarshalling request: \(error)")), headers, connection)
            }
            // Credentials known at once go the fast way; others the task's,
            // where a token may wait for the entry that assigned it.
            let token = RequestCredentials.token(in: headers)
            let credentials = node.needsCredentials(token: token)
            // Read only when credentials count: the common call pays one header lookup.
            let commonName = credentials ? RequestCredentials.commonName(in: headers) : nil
            let immediate = credentials ? node.callerNow(token: token, commonName: commonName) : .known(nil)
            // Read only by the routes it concerns (Range).
            let consistency = readsConsistency ? ReadConsistency.Requested(headers) : .none
            if case .known(let caller) = immediate {
                let call = UnaryCallContext(caller: caller, consistency: consistency)
                do {
                    if let response = try now(request, call) { return finished(.success(response), headers, connection) }
                    let answered = try here(request, call) { result in
                        switch result {
                        case .success(let make): reply { finished(Result { try make() }, headers, connection) }
                        case .failure(let error): reply { finished(.failure(error), headers, connection) }
                        }
                    }
                    if answered { return nil }
                } catch {
                    return finished(.failure(error), headers, connection)
                }
            }
            Task {
                // Encoded here, not in `reply`: a span's answer may be large,
                // and the connection's event loop is the node's.
                let encoded: Result<[UInt8], RPCError>
                do {
                    let response = try await RequestCredentials.with(token: token, commonName: commonName) {
                        try await ReadConsistency.Requested.$current.withValue(consistency) { try await later(request) }
                    }
                    encoded = finished(.success(response), headers, connection)
                } catch {
                    encoded = finished(.failure(error), headers, connection)
                }
                reply { encoded }
            }
            return nil
        }
    }
}
private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
