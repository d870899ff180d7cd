import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// One client URL serving gRPC and plain HTTP on the same port, as etcd's
/// does (etcd uses cmux): each accepted connection is sorted by its first
/// bytes. HTTP/2's client preface (gRPC always starts with it in cleartext)
/// goes to the gRPC server's pipeline; anything else is HTTP/1.1 for
/// `/health`, `/metrics`, `/version` and `/readyz`.
///
/// It is the gRPC transport's listener factory, so gRPC connections are
/// handed to the gRPC server's pipeline directly: no proxy, no second hop.
struct ClientListener: HTTP2ServerTransport.ListenerFactory {
    let address: HostPort
    let route: @Sendable (String) -> OperationsHTTPServer.Answer
    var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        // The gRPC server takes its connections from an async channel. The
        // listening socket cannot be that channel: an accepted socket starts
        // reading only once its announcement reaches the end of the
        // listener's pipeline, and only its first bytes say whether it is
        // gRPC. So the gRPC connections travel on a channel of their own: a
        // pipe nothing is written to, whose pipeline the sniffers feed.
        var ends: [CInt] = [0, 0]
        guard pipe(&ends) == 0 else { throw IOError(errnoCode: errno, reason: "pipe") }
        let writeEnd = ends[1]
        let carrier: any Channel
        do {
            carrier = try await NIOPipeBootstrap(group: eventLoopGroup).takingOwnershipOfDescriptor(input: ends[0]).get()
        } catch {
            close(ends[0])
            close(writeEnd)
            throw error
        }
        carrier.closeFuture.whenComplete { _ in close(writeEnd) }
        let deliver: @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel) -> Void = { connection in
            carrier.eventLoop.execute {
                carrier.pipeline.syncOperations.fireChannelRead(NIOAny(connection))
                carrier.pipeline.syncOperations.fireChannelReadComplete()
            }
        }
        let route = self.route
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ProtocolSniffer(connectionConfigurator: connectionConfigurator, route: route, deliver: deliver))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            try? await carrier.close()
            throw error
        }
        // Either ends both: the gRPC server closes the carrier when it
        // stops; a listener that fails ends the gRPC server's loop.
        server.closeFuture.whenComplete { _ in carrier.close(promise: nil) }
        carrier.closeFuture.whenComplete { _ in server.close(promise: nil) }
        return try await carrier.eventLoop.submit {
            try NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never>(
                wrappingChannelSynchronously: carrier)
        }.get()
    }

    /// The first handler of every accepted connection: reads until it can
    /// tell HTTP/2's preface from an HTTP/1 request, then builds the
    /// matching pipeline, replays what it read and leaves.
    final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

        let connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
        let route: @Sendable (String) -> OperationsHTTPServer.Answer
        let deliver: @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel) -> Void
        private var buffered: ByteBuffer?
        private var decided = false
        private var deadline: Scheduled<Void>?

        /// How long a connection may stay silent before it says what it
        /// speaks; gRPC and HTTP clients speak at once.
        static let firstBytesTimeout = TimeAmount.seconds(30)

        init(
            connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator,
            route: @escaping @Sendable (String) -> OperationsHTTPServer.Answer,
            deliver: @escaping @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel) -> Void
        ) {
            self.connectionConfigurator = connectionConfigurator
            self.route = route
            self.deliver = deliver
        }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: Self.firstBytesTimeout) { channel.close(promise: nil) }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            deadline?.cancel()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !decided else {
                context.fireChannelRead(data)
                return
            }
            var bytes = unwrapInboundIn(data)
            if var earlier = buffered {
                earlier.writeBuffer(&bytes)
                bytes = earlier
            }
            let seen = bytes.readableBytesView
            let compared = min(seen.count, Self.http2Preface.count)
            let isHTTP2 = seen.prefix(compared).elementsEqual(Self.http2Preface.prefix(compared))
            if isHTTP2 && compared < Self.http2Preface.count {
                buffered = bytes  // too short to tell yet
                return
            }
            decided = true
            buffered = nil
            deadline?.cancel()
            let pipeline = context.pipeline.syncOperations
            do {
                if isHTTP2 {
                    let channel = context.channel
                    let configured = connectionConfigurator.configure(channel: channel, tls: .none)
                    // The gRPC handlers came after the connection became
                    // active: let them start their timers, then feed them.
                    context.fireChannelActive()
                    context.fireChannelRead(NIOAny(bytes))
                    configured.whenSuccess { [deliver] connection in deliver(connection) }
                    configured.whenFailure { _ in channel.close(promise: nil) }
                } else {
                    try pipeline.configureHTTPServerPipeline(position: .last, withPipeliningAssistance: true, withErrorHandling: true)
                    try pipeline.addHandler(OperationsHTTPServer.Handler(route: route))
                    context.fireChannelRead(NIOAny(bytes))
                }
                pipeline.removeHandler(context: context, promise: nil)
            } catch {
                context.close(promise: nil)
            }
        }
    }
}
