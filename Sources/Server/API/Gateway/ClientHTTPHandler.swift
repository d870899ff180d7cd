import GRPCCore
import NIOCore
import NIOHTTP1

/// HTTP/1.1 on a client URL: the operator endpoints (`/health`,
/// `/metrics`, `/version`, `/readyz`) answered at once on the event loop,
/// and etcd's JSON gateway (`/v3/...`, `/v3beta/...`), whose calls run as
/// one task each, so a slow call never blocks the event loop. The request
/// body is read whole, up to the gateway's limit, before the call starts;
/// the task is cancelled when the connection closes.
final class ClientHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let http: ClientHTTP
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    private var call: Task<Void, Never>?

    init(http: ClientHTTP) {
        self.http = http
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            bodyTooLarge = false
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }),
               GatewayRoute.owns(Self.path(head.uri)) {
                // curl waits a second for this before a body over 1 kB; Go's server sends it.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(var part):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + part.readableBytes > http.gateway.bodyBytesMax {
                bodyTooLarge = true
                body = nil
            } else if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        call?.cancel()
        call = nil
        context.fireChannelInactive()
    }

    static func path(_ uri: String) -> String {
        String(uri.prefix { $0 != "?" })
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = Self.path(head.uri)
        var responder = ChannelResponder(channel: context.channel, version: head.version, keepAlive: head.isKeepAlive,
                                         extraHeaders: Self.corsHeaders(allowed: http.corsOrigins, origin: head.headers.first(name: "origin")))
        if head.method == .OPTIONS {
            // etcd's CORS handler answers every preflight itself.
            responder.write(.ok, contentType: Self.plainText, body: [])
            return
        }
        guard GatewayRoute.owns(path) else {
            let answer = http.route(head.uri)
            responder.write(answer.status, contentType: answer.contentType, body: answer.body)
            return
        }
        // grpc-gateway's answers for a path it lacks or a method it does not serve there.
        guard let gatewayRoute = GatewayRoute.find(path) else {
            responder.write(.notFound, contentType: Self.plainText, body: Array("Not Found\n".utf8))
            return
        }
        guard head.method == .POST else {
            responder.write(.methodNotAllowed, contentType: Self.plainText, body: Array("Method Not Allowed\n".utf8))
            return
        }
        guard !bodyTooLarge else {
            responder.write(.payloadTooLarge, contentType: Self.plainText, body: Array("Request Entity Too Large\n".utf8))
            return
        }
        let bytes = body.map { Array($0.readableBytesView) } ?? []
        body = nil
        var metadata = Self.metadata(head.headers)
        // The audit's client address for a refused call (only the gateway sets it).
        metadata.addString(GRPCConnectionHandler.peer(context.channel.remoteAddress), forKey: RequestCredentials.gatewayClientKey)
        let gateway = http.gateway
        let limit = http.limit
        // What etcd's gateway passes on from the gRPC response's headers.
        responder.extraHeaders.append(("Grpc-Metadata-Content-Type", "application/grpc"))
        call = Task {
            await gateway.call(gatewayRoute, metadata: metadata, body: bytes, limit: limit, responder: responder)
        }
    }

    static let plainText = "text/plain; charset=utf-8"

    /// etcd's addCORSHeader, for an allowed origin (all, by default).
    static func corsHeaders(allowed: [String], origin: String?) -> [(String, String)] {
        let granted: String
        if allowed.contains("*") {
            granted = "*"
        } else if let origin, allowed.contains(origin) {
            granted = origin
        } else {
            return []
        }
        return [("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
                ("Access-Control-Allow-Origin", granted),
                ("Access-Control-Allow-Headers", "accept, content-type, authorization")]
    }

    /// grpc-gateway's incoming header matcher: `Grpc-Metadata-<key>` headers
    /// become metadata `<key>` (so `Grpc-Metadata-Hasleader: true` asks for
    /// a leader), and `Authorization` becomes `authorization`. Ballot's
    /// consistency headers (`Ballot-Consistency`, `ReadConsistency.keys`)
    /// pass as they are.
    static func metadata(_ headers: HTTPHeaders) -> Metadata {
        var metadata = Metadata()
        let prefix = "grpc-metadata-"
        for (name, value) in headers {
            let lowered = name.lowercased()
            if lowered.hasPrefix(prefix), lowered.count > prefix.count {
                let key = String(lowered.dropFirst(prefix.count))
                // Only the client port's HTTP/2 handler names a verified certificate's
                // user; etcd's gateway ignores client certificates.
                guard key != RequestCredentials.commonNameKey, key != RequestCredentials.gatewayClientKey else { continue }
                metadata.addString(value, forKey: key)
            } else if lowered == "authorization" {
                metadata.addString(value, forKey: "authorization")
            } else if ReadConsistency.keys.contains(lowered) {
                metadata.addString(value, forKey: lowered)
            }
        }
        return metadata
    }
}

/// Writes one HTTP answer on a connection, from any thread: NIO hops to
/// the channel's event loop. Each streamed write completes when the bytes
/// reached the socket, so a client that stops reading holds its own call
/// back and nothing piles up in memory.
struct ChannelResponder: GatewayResponder {
    let channel: any Channel
    let version: HTTPVersion
    let keepAlive: Bool
    /// Headers every answer carries (CORS, the gateway's metadata).
    var extraHeaders: [(String, String)]

    func write(_ status: HTTPResponseStatus, contentType: String, body: [UInt8]) {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if !keepAlive { done.whenComplete { [channel] _ in channel.close(promise: nil) } }
    }

    func respond(_ status: HTTPResponseStatus, body: [UInt8]) async {
        write(status, contentType: "application/json", body: body)
    }

    func beginStream(_ status: HTTPResponseStatus) async throws {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Transfer-Encoding", value: "chunked")
        try await channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers))).get()
    }

    func chunk(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: bytes)))).get()
    }

    func endStream() async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        if !keepAlive { try await channel.close() }
    }
}
