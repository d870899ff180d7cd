import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Plain HTTP for operators and their tools: `/metrics` (Prometheus text),
/// `/health` (etcd's JSON: healthy when the member knows a leader and no
/// alarm is raised) and `/readyz`. Served on its own port (etcd's
/// `--listen-metrics-urls`), because the client port speaks HTTP/2 gRPC.
final class OperationsHTTPServer: Sendable {
    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }

    let address: HostPort
    let route: @Sendable (String) -> Answer

    init(address: HostPort, route: @escaping @Sendable (String) -> Answer) {
        self.address = address
        self.route = route
    }

    /// Serve until the task is cancelled.
    func run() async throws {
        let route = self.route
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(route: route))
                }
            }
        let channel = try await bootstrap.bind(to: address)
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let route: @Sendable (String) -> Answer
        private var uri = "/"

        init(route: @escaping @Sendable (String) -> Answer) { self.route = route }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                uri = head.uri
            case .body:
                break
            case .end:
                let answer = route(uri)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: answer.contentType)
                headers.add(name: "Content-Length", value: "\(answer.body.count)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
