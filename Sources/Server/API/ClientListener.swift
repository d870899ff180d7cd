import GRPCCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// One client URL serving gRPC and plain HTTP on the same port, as etcd's
/// does (etcd uses cmux): each accepted connection is sorted by its first
/// bytes. HTTP/2's client preface (gRPC always starts with it in cleartext)
/// gets the gRPC pipeline: NIOHTTP2Handler in frame mode and a
/// `GRPCConnectionHandler`, which answers the unary KV calls itself and
/// hands every other call to the gRPC server through `transport`. Anything
/// else is HTTP/1.1 for `/health`, `/metrics`, `/version`, `/readyz` and
/// etcd's JSON gateway.
///
/// A TLS ClientHello (an `https` URL) is decrypted first and its plaintext
/// sorted the same way; ALPN offers HTTP/1.1 before h2, so curl gets
/// HTTP/1.1 while gRPC clients, which offer only h2, get h2. A port named
/// by both an `http` and an `https` URL serves both, as etcd's does.
///
/// Its connections are served on `connectionLoop`, the node's event loop
/// (`BallotServer` passes it), as the peer connections are: a put's request
/// is read, proposed and, once applied, answered on the thread that runs
/// the consensus turns, instead of crossing from a client thread to the
/// node's and back (measured on 3 members: context switches per
/// single-client linearizable get 13 → 9.7, per put under 100 clients
/// -22%, members' CPU per put -12%). What could hold that thread long runs
/// off it: reads of a span and every call that waits run as tasks and
/// encode their answers there (`UnaryRoute`); streams and the JSON gateway
/// are tasks of grpc-swift's.
///
/// Its socket is bound when the member starts, as etcd binds its
/// listeners first, but it accepts only once the gRPC server runs (after
/// the member published itself): a client that comes early waits in the
/// kernel's backlog instead of being refused.
final class ClientListener: Sendable {
    /// Host and port; whether TLS is served is `tls`'s to say.
    let address: HostPort
    /// Serve connections that do not start TLS (an `http` URL).
    let plaintext: Bool
    /// Serve TLS (an `https` URL) with these contexts, as they are when a
    /// connection comes (`TLSSource`), with `--client-crl-file`'s list.
    let tls: TLSSource?
    /// What HTTP/1.1 connections get.
    let http: ClientHTTP
    /// The gRPC server's transport: accepting starts when it listens.
    let transport: ClientGRPCTransport
    /// The bound socket, not accepting until the transport listens.
    private let server: any Channel

    private init(address: HostPort, plaintext: Bool, tls: TLSSource?, http: ClientHTTP,
                 unary: UnaryCalls, wire: GRPCWireSettings, connectionLoop: any EventLoop) async throws {
        self.address = address
        self.plaintext = plaintext
        self.tls = tls
        self.http = http
        // The transport needs the socket and the socket's connections need
        // the transport: the box is set before accepting starts.
        let transportBox = NIOLockedValueBox<ClientGRPCTransport?>(nil)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton,
                                        childGroup: connectionLoop)
            .serverChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let transport = transportBox.withLockedValue({ $0 }) else {
                        assertionFailure("a client connection was accepted before the gRPC server ran")
                        channel.close(promise: nil)
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ProtocolSniffer(grpc: GRPCPipeline(unary: unary, transport: transport, wire: wire), http: http,
                                        plaintext: plaintext, tls: tls, decrypted: false))
                }
            }
        let server = try await bootstrap.bind(to: address)
        self.server = server
        transport = ClientGRPCTransport(
            startAccepting: { try await server.setOption(.autoRead, value: true).get() },
            stopAccepting: { server.close(promise: nil) })
        transportBox.withLockedValue { $0 = transport }
    }

    /// Close the socket (a member that stops before serving clients).
    func stopListening() {
        server.close(promise: nil)
    }

    /// The listeners for a member's client URLs, bound: one per host and
    /// port, serving each scheme a URL names there.
    static func bind(_ urls: [HostPort], tls: TLSSource?, route: @escaping @Sendable (String) -> OperationsHTTPServer.Answer,
                     gateway: JSONGateway, gatewayStreamsMax: Int, corsOrigins: [String],
                     unary: UnaryCalls, wire: GRPCWireSettings, connectionLoop: any EventLoop) async throws -> [ClientListener] {
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
                listeners.append(try await ClientListener(address: key, plaintext: seen.plain, tls: seen.secure ? tls : nil,
                                                          http: http,
                                                          unary: unary, wire: wire, connectionLoop: connectionLoop))
            }
        } catch {
            for listener in listeners { listener.stopListening() }
            throw error
        }
        return listeners
    }

    /// What a gRPC connection's pipeline is made of.
    struct GRPCPipeline: Sendable {
        let unary: UnaryCalls
        let transport: ClientGRPCTransport
        let wire: GRPCWireSettings

        func add(to pipeline: ChannelPipeline.SynchronousOperations) throws {
            try pipeline.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: wire.http2Connection))
            try pipeline.addHandler(GRPCConnectionHandler(unary: unary, transport: transport, settings: wire))
        }
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

        let grpc: GRPCPipeline
        let http: ClientHTTP
        /// Whether connections that do not start TLS are served.
        let plaintext: Bool
        /// The contexts for connections that start TLS, with `--client-crl-file`'s
        /// certificates whose connections are closed after their handshake;
        /// nil refuses them.
        let tls: TLSSource?
        /// Whether this sniffer reads what a TLS handler decrypted.
        let decrypted: Bool
        private var buffered: ByteBuffer?
        private var decided = false
        private var deadline: Scheduled<Void>?

        /// How long a connection may stay silent before it says what it
        /// speaks; gRPC and HTTP clients speak at once.
        static let firstBytesTimeout = TimeAmount.seconds(30)

        init(grpc: GRPCPipeline, http: ClientHTTP, plaintext: Bool, tls: TLSSource?, decrypted: Bool) {
            precondition(plaintext || tls != nil, "a listener serves at least one of plaintext and TLS")
            precondition(!decrypted || tls == nil, "no TLS inside TLS")
            self.grpc = grpc
            self.http = http
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
            if startsTLS, let tls = tls?.current() {
                decided = true
                deadline?.cancel()
                do {
                    // Sniffer, TLS, sniffer: the ClientHello goes through the
                    // TLS handler, whose plaintext the second sniffer sorts.
                    let pipeline = context.pipeline.syncOperations
                    try pipeline.addHandler(NIOSSLServerHandler(context: tls.server))
                    if let revocations = tls.revocations { try pipeline.addHandler(CertificateRevocationGate(list: revocations)) }
                    try pipeline.addHandler(ProtocolSniffer(grpc: grpc, http: http, plaintext: true, tls: nil, decrypted: true))
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
                    try grpc.add(to: pipeline)
                    // The HTTP/2 handler came after the connection became
                    // active: let it send its preface, then feed it.
                    context.fireChannelActive()
                    context.fireChannelRead(NIOAny(bytes))
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
