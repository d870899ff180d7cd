import GRPCCore
import GRPCNIOTransportHTTP2
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// One client URL serving gRPC and plain HTTP on the same port, as etcd's
/// does (etcd uses cmux): each accepted connection is sorted by its first
/// bytes. HTTP/2's client preface (gRPC always starts with it in cleartext)
/// goes to the gRPC server's pipeline; anything else is HTTP/1.1 for
/// `/health`, `/metrics`, `/version` and `/readyz`.
///
/// A TLS ClientHello (an `https` URL) is decrypted first and its plaintext
/// sorted the same way; ALPN offers HTTP/1.1 before h2, so curl gets
/// HTTP/1.1 while gRPC clients, which offer only h2, get h2. A port named
/// by both an `http` and an `https` URL serves both, as etcd's does.
///
/// It is the gRPC transport's listener factory, so gRPC connections are
/// handed to the gRPC server's pipeline directly: no proxy, no second hop.
///
/// Its socket is bound when the member starts, as etcd binds its
/// listeners first, but it accepts only once the gRPC server runs (after
/// the member published itself): a client that comes early waits in the
/// kernel's backlog instead of being refused.
final class ClientListener: HTTP2ServerTransport.ListenerFactory, Sendable {
    /// Host and port; whether TLS is served is `tls`'s to say.
    let address: HostPort
    /// Serve connections that do not start TLS (an `http` URL).
    let plaintext: Bool
    /// Serve TLS (an `https` URL) with this context.
    let tls: NIOSSLContext?
    /// What HTTP/1.1 connections get.
    let http: ClientHTTP
    /// The bound socket, not accepting until `makeListeningChannel`.
    private let server: any Channel
    /// What accepted connections need from the gRPC server; set once, before accepting starts.
    private let handoff = NIOLockedValueBox<Handoff?>(nil)

    private struct Handoff {
        let connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
        let deliver: @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, any Channel) -> Void
    }

    private init(address: HostPort, plaintext: Bool, tls: NIOSSLContext?, http: ClientHTTP) async throws {
        self.address = address
        self.plaintext = plaintext
        self.tls = tls
        self.http = http
        let handoff = self.handoff
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let ready = handoff.withLockedValue({ $0 }) else {
                        // Accepting starts only after the hand-off is set.
                        assertionFailure("a client connection was accepted before the gRPC server ran")
                        channel.close(promise: nil)
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolSniffer(connectionConfigurator: ready.connectionConfigurator, http: http, deliver: ready.deliver,
                                        plaintext: plaintext, tls: tls, decrypted: false))
                }
            }
        server = try await bootstrap.bind(to: address)
    }

    /// Close the socket (a member that stops before serving clients).
    func stopListening() {
        server.close(promise: nil)
    }

    /// The listeners for a member's client URLs, bound: one per host and
    /// port, serving each scheme a URL names there.
    static func bind(_ urls: [HostPort], tls: NIOSSLContext?, route: @escaping @Sendable (String) -> OperationsHTTPServer.Answer,
                     gateway: JSONGateway, gatewayStreamsMax: Int, corsOrigins: [String]) async throws -> [ClientListener] {
        var order: [HostPort] = []
        var schemes: [HostPort: (plain: Bool, secure: Bool)] = [:]
        for url in urls {
            let key = HostPort(host: url.host, port: url.port, unixSocket: url.unixSocket)
            if schemes[key] == nil { order.append(key) }
            var seen = schemes[key] ?? (false, false)
            if url.secure { seen.secure = true } else { seen.plain = true }
            schemes[key] = seen
        }
        var listeners: [ClientListener] = []
        do {
            for key in order {
                let seen = schemes[key]!
                precondition(!seen.secure || tls != nil, "an https client URL needs a TLS context (ServerConfig.validated checks)")
                // Each URL's gateway has its own stream limit, as each of etcd's
                // reaches gRPC through a connection of its own.
                let http = ClientHTTP(route: route, gateway: gateway, limit: GatewayStreamLimit(limit: gatewayStreamsMax), corsOrigins: corsOrigins)
                listeners.append(try await ClientListener(address: key, plaintext: seen.plain, tls: seen.secure ? tls : nil, http: http))
            }
        } catch {
            for listener in listeners { listener.stopListening() }
            throw error
        }
        return listeners
    }
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
        // The carrier is wrapped before the first connection can arrive: a
        // configured connection that reached a carrier with no consumer
        // would be dropped with its streams open, which NIO treats as a
        // fatal programming error.
        let asyncCarrier: NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never>
        do {
            asyncCarrier = try await carrier.eventLoop.submit {
                try NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never>(
                    wrappingChannelSynchronously: carrier)
            }.get()
        } catch {
            try? await carrier.close()
            throw error
        }
        let deliver: @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, any Channel) -> Void = { connection, channel in
            carrier.eventLoop.execute {
                // A server that stopped takes no more: close the connection
                // (its streams with it) rather than drop it open.
                guard carrier.isActive else {
                    channel.close(promise: nil)
                    return
                }
                carrier.pipeline.syncOperations.fireChannelRead(NIOAny(connection))
                carrier.pipeline.syncOperations.fireChannelReadComplete()
            }
        }
        let server = self.server
        let ready = Handoff(connectionConfigurator: connectionConfigurator, deliver: deliver)
        handoff.withLockedValue { current in
            precondition(current == nil, "a client listener serves one gRPC server")
            current = ready
        }
        do {
            // gRPC's handler for graceful shutdown (it sees each accepted
            // connection after the acceptor registered it); then accept.
            try await server.eventLoop.flatSubmit {
                listenerConfigurator.configure(channel: server)
            }.get()
            try await server.setOption(.autoRead, value: true).get()
        } catch {
            try? await carrier.close()
            throw error
        }
        // Either ends both: the gRPC server closes the carrier when it
        // stops; a listener that fails ends the gRPC server's loop.
        server.closeFuture.whenComplete { _ in carrier.close(promise: nil) }
        carrier.closeFuture.whenComplete { _ in server.close(promise: nil) }
        return asyncCarrier
    }

    /// The first handler of every accepted connection: reads until it can
    /// tell a TLS ClientHello, HTTP/2's preface and an HTTP/1 request
    /// apart, then builds the matching pipeline, replays what it read and
    /// leaves. Under TLS a second sniffer sorts the decrypted bytes.
    final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        /// A TLS record of type handshake: every TLS connection starts with one.
        static let tlsHandshakeByte: UInt8 = 0x16

        let connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
        let http: ClientHTTP
        let deliver: @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, any Channel) -> Void
        /// Whether connections that do not start TLS are served.
        let plaintext: Bool
        /// The context for connections that start TLS; nil refuses them.
        let tls: NIOSSLContext?
        /// Whether this sniffer reads what a TLS handler decrypted.
        let decrypted: Bool
        private var buffered: ByteBuffer?
        private var decided = false
        private var deadline: Scheduled<Void>?

        /// How long a connection may stay silent before it says what it
        /// speaks; gRPC and HTTP clients speak at once.
        static let firstBytesTimeout = TimeAmount.seconds(30)

        init(
            connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator,
            http: ClientHTTP,
            deliver: @escaping @Sendable (HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, any Channel) -> Void,
            plaintext: Bool, tls: NIOSSLContext?, decrypted: Bool
        ) {
            precondition(plaintext || tls != nil, "a listener serves at least one of plaintext and TLS")
            precondition(!decrypted || tls == nil, "no TLS inside TLS")
            self.connectionConfigurator = connectionConfigurator
            self.http = http
            self.deliver = deliver
            self.plaintext = plaintext
            self.tls = tls
            self.decrypted = decrypted
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
            guard let first = seen.first else { return }
            let startsTLS = !decrypted && first == Self.tlsHandshakeByte
            if startsTLS, let tls {
                decided = true
                deadline?.cancel()
                do {
                    // Sniffer, TLS, sniffer: the ClientHello goes through the
                    // TLS handler, whose plaintext the second sniffer sorts.
                    let pipeline = context.pipeline.syncOperations
                    try pipeline.addHandler(NIOSSLServerHandler(context: tls))
                    try pipeline.addHandler(ProtocolSniffer(
                        connectionConfigurator: connectionConfigurator, http: http, deliver: deliver,
                        plaintext: true, tls: nil, decrypted: true))
                    context.fireChannelRead(NIOAny(bytes))
                    pipeline.removeHandler(context: context, promise: nil)
                } catch {
                    context.close(promise: nil)
                }
                return
            }
            guard plaintext || decrypted else {
                // An https-only URL: plaintext gets nothing, as from etcd.
                decided = true
                context.close(promise: nil)
                return
            }
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
                    let configured = connectionConfigurator.configure(
                        channel: channel, tls: decrypted ? .configured(requireALPN: false) : .none)
                    // The gRPC handlers came after the connection became
                    // active: let them start their timers, then feed them.
                    context.fireChannelActive()
                    context.fireChannelRead(NIOAny(bytes))
                    configured.whenSuccess { [deliver] connection in deliver(connection, channel) }
                    configured.whenFailure { _ in channel.close(promise: nil) }
                } else {
                    try pipeline.configureHTTPServerPipeline(position: .last, withPipeliningAssistance: true, withErrorHandling: true)
                    try pipeline.addHandler(http.handler())
                    context.fireChannelRead(NIOAny(bytes))
                }
                pipeline.removeHandler(context: context, promise: nil)
            } catch {
                context.close(promise: nil)
            }
        }
    }
}

/// What a client URL's HTTP/1.1 connections are served with.
struct ClientHTTP: Sendable {
    let route: @Sendable (String) -> OperationsHTTPServer.Answer
    let gateway: JSONGateway
    let limit: GatewayStreamLimit
    /// etcd's --cors: origins allowed, "*" for all.
    let corsOrigins: [String]

    func handler() -> ClientHTTPHandler {
        ClientHTTPHandler(http: self)
    }
}
