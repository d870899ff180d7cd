import EtcdAPI
import GRPCCore
import NIOHPACK
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
        func path(_ method: MethodDescriptor) -> String { "/\(method.service.fullyQualifiedService)/\(method.method)" }
        let list = [
            UnaryRoute.make(Etcdserverpb_KV.Method.Range.descriptor, node: node, metrics: metrics,
                            // A get of one key answers on the event loop; a span
                            // or a linearizable read runs as a task.
                            now: { $0.serializable && $0.rangeEnd.isEmpty ? try kv.serializableRange($0) : nil },
                            later: { try await kv.range($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Put.descriptor, node: node, metrics: metrics, later: { try await kv.put($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.DeleteRange.descriptor, node: node, metrics: metrics, later: { try await kv.deleteRange($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Txn.descriptor, node: node, metrics: metrics, later: { try await kv.txn($0) }),
            UnaryRoute.make(Etcdserverpb_KV.Method.Compact.descriptor, node: node, metrics: metrics, later: { try await kv.compact($0) }),
        ]
        precondition(list.allSatisfy { $0.service == service }, "the unary routes are the KV service's")
        routes = Dictionary(uniqueKeysWithValues: list.map { (path(MethodDescriptor(fullyQualifiedService: $0.service, method: $0.method)), $0) })
    }

    /// The route for `path` (`/etcdserverpb.KV/Put`), if it is answered here.
    func route(_ path: String) -> UnaryRoute? {
        routes[path]
    }
}

/// How a unary call is answered: at once, or by an operation to run.
enum UnaryOutcome: Sendable {
    case answered(Result<[UInt8], RPCError>)
    case pending(@Sendable () async -> Result<[UInt8], RPCError>)
}

/// One unary method: decodes the request, answers, encodes the response.
struct UnaryRoute: Sendable {
    let service: String
    let method: String
    /// Start the call with its request message and headers.
    let start: @Sendable (_ message: [UInt8], _ headers: HPACKHeaders) -> UnaryOutcome

    static func make<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ descriptor: MethodDescriptor, node: Node, metrics: ServerMetrics,
        now: @escaping @Sendable (Request) throws -> Response? = { _ in nil },
        later: @escaping @Sendable (Request) async throws -> Response
    ) -> UnaryRoute {
        let service = descriptor.service.fullyQualifiedService
        let method = descriptor.method
        @Sendable func finished(_ result: Result<Response, any Error>, cancelled: Bool = false) -> Result<[UInt8], RPCError> {
            let encoded: Result<[UInt8], RPCError>
            switch result {
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
            let code = cancelled ? "Canceled" : encoded.failure.map { MetricsInterceptor.grpcCodeName($0) } ?? "OK"
            metrics.handled(service: service, method: method, type: "unary", code: code)
            return encoded
        }
        return UnaryRoute(service: service, method: method) { message, headers in
            metrics.started(service: service, method: method, type: "unary")
            if headers[canonicalForm: RequireLeaderInterceptor.metadataKey].contains("true"), node.status.leader == nil {
                return .answered(finished(.failure(EtcdError.noLeader.rpcError)))
            }
            let request: Request
            do {
                request = try Request(serializedBytes: message)
            } catch {
                return .answered(finished(.failure(RPCError(code: .internalError, message: "grpc: error unmarshalling request: \(error)"))))
            }
            do {
                if let response = try now(request) { return .answered(finished(.success(response))) }
            } catch {
                return .answered(finished(.failure(error)))
            }
            return .pending {
                do {
                    return finished(.success(try await later(request)))
                } catch {
                    return finished(.failure(error), cancelled: Task.isCancelled)
                }
            }
        }
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
