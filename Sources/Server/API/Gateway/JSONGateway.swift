import GRPCCore
import NIOHTTP1
import SwiftProtobuf

/// etcd's JSON gateway (`POST /v3/kv/range` and the rest): HTTP/1.1 with
/// JSON bodies on the client URL, for curl and for clients without gRPC.
///
/// As etcd's gateway is a gRPC client of its own member, this one calls
/// the member's gRPC services through an in-process transport: the same
/// handlers, interceptors (require-leader, metrics) and errors as a gRPC
/// client gets, with the JSON conversion done here and nowhere else.
final class JSONGateway: Sendable {
    /// The member's own gRPC server, in process.
    let client: GRPCClient<LocalTransport.Client>
    /// The largest request body read; a larger one is refused (413) unread.
    let bodyBytesMax: Int

    /// etcd's `--max-request-bytes` is measured on the binary request; its
    /// JSON form (base64 bytes, quoted numbers) is larger, so the body may
    /// be this many times that limit, plus the gRPC framing allowance.
    static let jsonExpansion = 2

    init(client: GRPCClient<LocalTransport.Client>, maxRequestBytes: Int, overheadBytes: Int) {
        self.client = client
        self.bodyBytesMax = maxRequestBytes * Self.jsonExpansion + overheadBytes
    }

    /// Run one gateway call and answer it through `responder`. Returns when
    /// the answer is complete or the HTTP client left (the task is cancelled).
    func call(_ route: GatewayRoute, metadata: Metadata, body: [UInt8], limit: GatewayStreamLimit,
              responder: some GatewayResponder) async {
        let requests: [[UInt8]]
        do {
            requests = try Self.requests(route, body)
        } catch {
            await responder.respond(GatewayJSON.httpStatus(error.code), body: GatewayJSON.errorBody(error))
            return
        }
        guard await limit.acquire() else { return }
        switch route.shape {
        case .unary:
            await unary(route, metadata: metadata, request: requests.first ?? [], responder: responder)
        case .serverStream:
            await stream(route, metadata: metadata, requests: Array(requests.prefix(1)), holdsOpen: false, responder: responder)
        case .bidiStream(let holdsOpen):
            await stream(route, metadata: metadata, requests: requests, holdsOpen: holdsOpen, responder: responder)
        }
        await limit.release()
    }

    /// The body's JSON values as binary requests (an empty body is one
    /// empty request, as grpc-gateway reads it).
    static func requests(_ route: GatewayRoute, _ body: [UInt8]) throws(RPCError) -> [[UInt8]] {
        var requests: [[UInt8]] = []
        for value in try GatewayJSON.values(body) {
            do {
                requests.append(try route.binaryRequest(json: Array(value)))
            } catch {
                throw RPCError(code: .invalidArgument, message: "\(error)")
            }
        }
        if requests.isEmpty { requests.append([]) }
        return requests
    }

    private func unary(_ route: GatewayRoute, metadata: Metadata, request: [UInt8], responder: some GatewayResponder) async {
        do {
            let reply = try await client.unary(
                request: ClientRequest(message: request, metadata: metadata), descriptor: route.method,
                serializer: RawMessageCoder(), deserializer: RawMessageCoder(), options: .defaults
            ) { response in try response.message }
            let json = try route.jsonResponse(binary: reply)
            await responder.respond(.ok, body: json)
        } catch {
            let failure = Self.rpcError(error)
            await responder.respond(GatewayJSON.httpStatus(failure.code), body: GatewayJSON.errorBody(failure))
        }
    }

    private func stream(_ route: GatewayRoute, metadata: Metadata, requests: [[UInt8]], holdsOpen: Bool,
                        responder: some GatewayResponder) async {
        let outgoing = StreamingClientRequest(of: [UInt8].self, metadata: metadata) { writer in
            try await writer.write(contentsOf: requests)
            // etcd's watch stream outlives the client's half-close; the
            // call ends when the HTTP client leaves (this task is cancelled).
            while holdsOpen { try await Task.sleep(for: .seconds(3_600)) }
        }
        try? await client.bidirectionalStreaming(
            request: outgoing, descriptor: route.method,
            serializer: RawMessageCoder(), deserializer: RawMessageCoder(), options: .defaults
        ) { response in
            var started = false
            do {
                for try await message in response.messages {
                    let json = try route.jsonResponse(binary: message)
                    if !started {
                        try await responder.beginStream(.ok)
                        started = true
                    }
                    try await responder.chunk(GatewayJSON.resultChunk(json) + Self.delimiter)
                }
            } catch let error where error is RPCError || !started {
                // The call failed: one error chunk ends the stream.
                let failure = Self.rpcError(error)
                if !started { try await responder.beginStream(GatewayJSON.httpStatus(failure.code)) }
                try await responder.chunk(GatewayJSON.streamErrorChunk(failure))
                try await responder.endStream()
                return
            }
            if !started { try await responder.beginStream(.ok) }
            try await responder.endStream()
        }
    }

    static let delimiter: [UInt8] = [UInt8(ascii: "\n")]

    static func rpcError(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        if let convertible = error as? any RPCErrorConvertible { return RPCError(convertible) }
        return RPCError(code: .unknown, message: "\(error)")
    }
}

/// Where a gateway call's answer goes: the HTTP connection.
protocol GatewayResponder: Sendable {
    /// A whole answer with a length.
    func respond(_ status: HTTPResponseStatus, body: [UInt8]) async
    /// A streamed answer: the head, chunks, then the end. Each throws when
    /// the HTTP client left.
    func beginStream(_ status: HTTPResponseStatus) async throws
    func chunk(_ bytes: [UInt8]) async throws
    func endStream() async throws
}

/// Messages that travel as the bytes they already are: the gateway
/// converts JSON to protobuf itself, once, with each route's types.
struct RawMessageCoder: MessageSerializer, MessageDeserializer {
    typealias Message = [UInt8]
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
