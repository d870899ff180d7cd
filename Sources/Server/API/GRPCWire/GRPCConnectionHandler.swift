import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import X509

/// One client connection's gRPC calls, read straight from its HTTP/2
/// frames on the connection's event loop (HTTP/2 in frame mode: no channel
/// per stream).
///
/// etcd's unary KV calls (`UnaryCalls`) are answered here: the request is
/// read, decoded and answered on the event loop when it needs no waiting
/// (a serializable get), or by one task that hops back with the answer.
/// Every other call (watches, leases, maintenance, cluster, lock and
/// election) is handed to grpc-swift's server as an `RPCStream` through
/// `ClientGRPCTransport`, so the services keep one implementation. A
/// profile of a serializable get showed grpc-swift's per-stream machinery
/// (a child channel, an async channel and an executor task group per call)
/// at about 90% of the member's CPU and the get itself at 3%.
///
/// Flow control is this handler's, as HTTP/2 in frame mode leaves it to
/// the user: the connection's window is refilled as bytes arrive (each
/// stream's window bounds what it holds); a unary call's stream window as
/// its one message arrives (bounded by the message limit); a streaming
/// call's as its handler consumes messages, once more than
/// `queuedInboundBytesMax` wait.
///
/// Everything here runs on the connection's event loop; other threads
/// reach it only through `eventLoop.execute`.
final class GRPCConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let unary: UnaryCalls
    private let transport: ClientGRPCTransport
    private let settings: GRPCWireSettings
    private var context: ChannelHandlerContext?
    private var calls: [HTTP2StreamID: Call] = [:]
    /// Bytes received on the connection and not yet given back in a WINDOW_UPDATE.
    private var connectionUnacked = 0
    /// GOAWAY sent: no new calls; the connection closes when the last ends.
    private var goingAway = false
    private var highestStreamID = HTTP2StreamID.rootStream
    /// Within a read: flush once, when the read completes.
    private var reading = false
    private var flushPending = false
    private var flushScheduled = false

    private enum Call {
        /// A unary call's request arriving.
        case readingUnary(UnaryRead)
        /// Its handler runs; a reset stream lets it finish and drops its answer.
        case answering
        /// The answer went out; the stream closes when the client's side has.
        case answered
        /// A call grpc-swift serves.
        case bridged(BridgedCall)
    }

    private struct UnaryRead {
        let route: UnaryRoute
        let headers: HPACKHeaders
        var reader: GRPCMessageReader
        var message: [UInt8]?
        var unacked = 0
    }

    /// The state of a call handed to grpc-swift, owned by the event loop.
    private final class BridgedCall {
        let inbound: AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>.Continuation
        let cancellation: ServerContext.RPCCancellationHandle
        var reader: GRPCMessageReader
        /// Bytes of complete messages the handler has not taken yet.
        var queuedBytes = 0
        /// Bytes received while too many were queued, owed to the stream's window.
        var deferredAck = 0
        var unacked = 0
        var clientDone = false
        var sentHeaders = false
        var sentStatus = false

        init(inbound: AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>.Continuation,
             cancellation: ServerContext.RPCCancellationHandle, maxMessageBytes: Int) {
            self.inbound = inbound
            self.cancellation = cancellation
            self.reader = GRPCMessageReader(maxMessageBytes: maxMessageBytes)
        }
    }

    init(unary: UnaryCalls, transport: ClientGRPCTransport, settings: GRPCWireSettings) {
        self.unary = unary
        self.transport = transport
        self.settings = settings
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if !transport.register(self, on: context.eventLoop) { context.close(promise: nil) }
        // Added to an active connection, NIOHTTP2Handler sent its preface
        // when it was added and swallows the later channelActive.
        if context.channel.isActive { raiseConnectionWindow(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        raiseConnectionWindow(context: context)
    }

    /// The common name of the client's verified certificate (`--client-cert-auth`),
    /// read once per connection; "" when there is none.
    private var verifiedCommonName: String?

    /// `headers` with the connection's verified common name under
    /// `RequestCredentials.commonNameKey`, which only this handler sets: a
    /// client's own header of that name is dropped.
    private func withVerifiedCommonName(_ headers: HPACKHeaders) -> HPACKHeaders {
        // The common case (no certificate users, no such header) copies nothing.
        guard settings.clientCertificateUsers || headers.contains(name: RequestCredentials.commonNameKey) else { return headers }
        var headers = headers
        headers.remove(name: RequestCredentials.commonNameKey)
        guard settings.clientCertificateUsers, let context else { return headers }
        if verifiedCommonName == nil {
            let certificate = (try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self))?.peerCertificate
            let parsed = certificate.flatMap { try? Certificate(derEncoded: $0.toDERBytes()) }
            verifiedCommonName = parsed.flatMap { PeerCertificateRule.commonName(of: $0) } ?? ""
        }
        if let name = verifiedCommonName, !name.isEmpty { headers.add(name: RequestCredentials.commonNameKey, value: name) }
        return headers
    }

    private var connectionWindowRaised = false

    /// HTTP/2 opens every connection with a 64 KiB window; raise it at once.
    private func raiseConnectionWindow(context: ChannelHandlerContext) {
        guard !connectionWindowRaised else { return }
        connectionWindowRaised = true
        let raise = settings.connectionWindowBytes - 65_535
        if raise > 0 {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: raise))), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for id in Array(calls.keys) { close(id, reset: true) }
        transport.unregister(self)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIOHTTP2Handler answers protocol errors itself (RST_STREAM or
        // GOAWAY); anything else (I/O, TLS) ends the connection.
        if error is any NIOHTTP2Error { return }
        // One stream's error (a frame its state does not allow): that call
        // ends, reset, and the connection's other calls go on.
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            let id = streamError.streamID
            guard calls[id] != nil else { return }
            close(id, reset: true)
            write(id, .rstStream(.internalError))
            flush()
            return
        }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            close(closed.streamID, reset: closed.reason != nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            receivedHeaders(frame.streamID, headers.headers, endStream: headers.endStream)
        case .data(let data):
            receivedData(frame.streamID, data)
        default:
            break  // NIOHTTP2Handler answers pings and settings and keeps the windows.
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    // MARK: Requests

    private func receivedHeaders(_ id: HTTP2StreamID, _ headers: HPACKHeaders, endStream: Bool) {
        if calls[id] != nil {
            // Trailers from the client: only END_STREAM matters.
            if endStream { requestEnded(id) }
            return
        }
        let headers = withVerifiedCommonName(headers)
        highestStreamID = max(highestStreamID, id)
        guard !goingAway else {
            write(id, .rstStream(.refusedStream))
            return
        }
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix(GRPCWireHeaders.contentType) else {
            // gRPC's answer to a request that is not gRPC: HTTP's 415.
            write(id, .headers(.init(headers: [":status": "415"], endStream: true)))
            resetIfOpen(id, clientDone: endStream)
            return
        }
        guard let path = headers.first(name: ":path"), headers.first(name: ":method") == "POST" else {
            refuse(id, Status(code: .invalidArgument, message: "a gRPC request is a POST with a :path"), clientDone: endStream)
            return
        }
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            refuse(id, Status(code: .unimplemented, message: "\(encoding) compression is not supported"), clientDone: endStream)
            return
        }
        if let route = unary.route(path) {
            calls[id] = .readingUnary(UnaryRead(route: route, headers: headers, reader: GRPCMessageReader(maxMessageBytes: settings.maxRequestMessageBytes)))
            if endStream { requestEnded(id) }
            return
        }
        bridge(id, path: path, headers: headers, endStream: endStream)
    }

    private func receivedData(_ id: HTTP2StreamID, _ data: HTTP2Frame.FramePayload.Data) {
        guard case .byteBuffer(let bytes) = data.data else {
            preconditionFailure("received DATA is a byte buffer")
        }
        let length = bytes.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
        connectionUnacked += length
        if connectionUnacked >= settings.connectionWindowBytes / 2 {
            write(.rootStream, .windowUpdate(windowSizeIncrement: connectionUnacked))
            connectionUnacked = 0
        }
        switch calls[id] {
        case .readingUnary(var read):
            do {
                let messages = try read.reader.append(bytes)
                if !messages.isEmpty {
                    guard read.message == nil, messages.count == 1 else {
                        refuse(id, Status(code: .internalError, message: "grpc: a unary call carries one request message"), clientDone: data.endStream)
                        return
                    }
                    read.message = messages[0]
                }
            } catch {
                refuse(id, Self.status(error), clientDone: data.endStream)
                return
            }
            read.unacked += length
            // Not on the request's last frame: HTTP/2 gives no window to a
            // stream whose sender is done (NIOHTTP2 refuses the frame).
            if !data.endStream, read.unacked >= settings.streamWindowBytes / 2 {
                write(id, .windowUpdate(windowSizeIncrement: read.unacked))
                read.unacked = 0
            }
            calls[id] = .readingUnary(read)
            if data.endStream { requestEnded(id) }
        case .bridged(let call):
            do {
                for message in try call.reader.append(bytes) {
                    call.queuedBytes += message.count + 5
                    call.inbound.yield(.message(message))
                }
            } catch {
                call.clientDone = true
                let status = Self.status(error)
                call.inbound.finish(throwing: RPCError(code: RPCError.Code(status.code) ?? .internalError, message: status.message))
                return
            }
            if call.queuedBytes > settings.queuedInboundBytesMax {
                call.deferredAck += length
            } else {
                call.unacked += length
                if !data.endStream, call.unacked >= settings.streamWindowBytes / 4 {
                    write(id, .windowUpdate(windowSizeIncrement: call.unacked))
                    call.unacked = 0
                }
            }
            if data.endStream { requestEnded(id) }
        case .answering, .answered, nil:
            break  // a call already answered, or gone
        }
    }

    /// The client finished its side of stream `id`.
    private func requestEnded(_ id: HTTP2StreamID) {
        switch calls[id] {
        case .readingUnary(let read):
            guard let message = read.message, !read.reader.hasPartialMessage else {
                refuse(id, Status(code: .internalError, message: "grpc: the request ended without a whole message"), clientDone: true)
                return
            }
            calls[id] = .answering
            let loop = context!.eventLoop
            let now = read.route.start(message, read.headers, context!.channel) { make in
                // On the loop already (the node's, answering a batch of
                // applied writes): at once, sharing the batch's flush.
                // `make` also counts the call when the stream is gone.
                if loop.inEventLoop {
                    self.answer(id, make())
                } else {
                    loop.execute { self.answer(id, make()) }
                }
            }
            if let now { answer(id, now) }
        case .bridged(let call):
            guard !call.clientDone else { return }
            call.clientDone = true
            if call.reader.hasPartialMessage {
                call.inbound.finish(throwing: RPCError(code: .internalError, message: "grpc: the request ended inside a message"))
            } else {
                call.inbound.finish()
            }
        case .answering, .answered, nil:
            break
        }
    }

    // MARK: Unary answers

    /// Send a unary call's answer, unless its stream is gone. Flushed
    /// after what else is queued on the loop: answers made together (a
    /// batch of applied writes) share one write to the socket.
    private func answer(_ id: HTTP2StreamID, _ result: Result<[UInt8], RPCError>) {
        guard case .answering = calls[id] else { return }
        calls[id] = .answered
        switch result {
        case .success(let message):
            write(id, .headers(.init(headers: GRPCWireHeaders.response)))
            write(id, .data(.init(data: .byteBuffer(frame(message)))))
            write(id, .headers(.init(headers: GRPCWireHeaders.ok, endStream: true)))
        case .failure(let error):
            write(id, .headers(.init(headers: GRPCWireHeaders.trailers(Status(code: Status.Code(error.code), message: error.message),
                                                                      metadata: error.metadata, trailersOnly: true), endStream: true)))
        }
        flushSoon()
    }

    /// End a call at once with `status` (trailers only), and reset the
    /// stream if the client is still sending, as grpc-go does.
    private func refuse(_ id: HTTP2StreamID, _ status: Status, clientDone: Bool) {
        calls[id] = .answered
        write(id, .headers(.init(headers: GRPCWireHeaders.trailers(status, trailersOnly: true), endStream: true)))
        resetIfOpen(id, clientDone: clientDone)
    }

    /// Reset the stream if the client is still sending; flush either way.
    private func resetIfOpen(_ id: HTTP2StreamID, clientDone: Bool) {
        if !clientDone { write(id, .rstStream(.noError)) }
        flush()
    }

    // MARK: Calls served by grpc-swift

    private func bridge(_ id: HTTP2StreamID, path: String, headers: HPACKHeaders, endStream: Bool) {
        guard let context, let descriptor = Self.descriptor(path) else {
            refuse(id, Status(code: .unimplemented, message: "unknown method \(path)"), clientDone: endStream)
            return
        }
        let (inbound, continuation) = AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>.makeStream()
        let cancellation = ServerContext.RPCCancellationHandle()
        let call = BridgedCall(inbound: continuation, cancellation: cancellation, maxMessageBytes: settings.maxRequestMessageBytes)
        calls[id] = .bridged(call)
        continuation.yield(.metadata(GRPCWireHeaders.metadata(headers)))
        if endStream {
            call.clientDone = true
            continuation.finish()
        }
        let loop = context.eventLoop
        let reporting = ConsumptionReporting(base: inbound) { [self] bytes in
            loop.execute { self.consumed(id, bytes) }
        }
        let writer = BridgedWriter(loop: loop, queuedBytesMax: settings.queuedOutboundBytesMax) { [self] part, promise in
            self.send(id, part, promise)
        }
        let stream = RPCStream<ClientGRPCTransport.Inbound, ClientGRPCTransport.Outbound>(
            descriptor: descriptor, inbound: RPCAsyncSequence(wrapping: reporting), outbound: RPCWriter.Closable(wrapping: writer))
        let serverContext = ServerContext(descriptor: descriptor, remotePeer: Self.peer(context.channel.remoteAddress),
                                          localPeer: Self.peer(context.channel.localAddress), cancellation: cancellation)
        if !transport.deliver(stream, serverContext) {
            calls[id] = nil
            continuation.finish()
            write(id, .rstStream(.refusedStream))
            flush()
        }
    }

    /// The handler of call `id` took `bytes` of its messages.
    private func consumed(_ id: HTTP2StreamID, _ bytes: Int) {
        guard case .bridged(let call) = calls[id] else { return }
        call.queuedBytes -= bytes
        if call.deferredAck > 0, !call.clientDone, call.queuedBytes <= settings.queuedInboundBytesMax {
            write(id, .windowUpdate(windowSizeIncrement: call.deferredAck))
            call.deferredAck = 0
            flush()
        }
    }

    /// One part of grpc-swift's response for call `id`.
    private func send(_ id: HTTP2StreamID, _ part: RPCResponsePart<[UInt8]>, _ promise: EventLoopPromise<Void>) {
        guard case .bridged(let call) = calls[id], !call.sentStatus else {
            promise.fail(RPCError(code: .cancelled, message: "the stream closed"))
            return
        }
        switch part {
        case .metadata(let metadata):
            precondition(!call.sentHeaders, "grpc-swift sends a response's metadata once")
            call.sentHeaders = true
            write(id, .headers(.init(headers: GRPCWireHeaders.response(metadata: metadata))), promise: promise)
        case .message(let message):
            if !call.sentHeaders {
                call.sentHeaders = true
                write(id, .headers(.init(headers: GRPCWireHeaders.response)))
            }
            write(id, .data(.init(data: .byteBuffer(frame(message)))), promise: promise)
        case .status(let status, let metadata):
            write(id, .headers(.init(headers: GRPCWireHeaders.trailers(status, metadata: metadata, trailersOnly: !call.sentHeaders), endStream: true)),
                  promise: promise)
            call.sentStatus = true
            if !call.clientDone { write(id, .rstStream(.noError)) }
        }
        flushSoon()
    }

    // MARK: Closing

    /// Stream `id` closed: a reset (by either side) cancels what still runs.
    private func close(_ id: HTTP2StreamID, reset: Bool) {
        switch calls.removeValue(forKey: id) {
        case .bridged(let call):
            // Cancelled before its requests end, so a handler that returns
            // because they ended sees itself cancelled (counted Canceled, as
            // grpc-go counts a client that left).
            if reset || !call.sentStatus { call.cancellation.cancel() }
            if !call.clientDone {
                call.clientDone = true
                call.inbound.finish(throwing: RPCError(code: .cancelled, message: "the client reset the stream"))
            }
        case .readingUnary, .answering, .answered, nil:
            break
        }
        if goingAway, calls.isEmpty { context?.close(promise: nil) }
    }

    /// Graceful shutdown: announce the last stream served; close once idle.
    func goAway() {
        guard !goingAway, let context else { return }
        goingAway = true
        write(.rootStream, .goAway(lastStreamID: highestStreamID, errorCode: .noError, opaqueData: nil))
        context.flush()
        if calls.isEmpty { context.close(promise: nil) }
    }

    /// Abrupt shutdown: close now.
    func closeNow() {
        context?.close(promise: nil)
    }

    // MARK: Writing

    private func write(_ id: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: promise)
    }

    /// Flush now, or when the current read completes.
    private func flush() {
        if reading {
            flushPending = true
        } else {
            flushPending = false
            context?.flush()
        }
    }

    /// Flush after whatever else is queued on the event loop, so that
    /// responses written by many tasks at once share a flush.
    private func flushSoon() {
        if reading {
            flushPending = true
            return
        }
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.execute {
            self.flushScheduled = false
            self.flushPending = false
            self.context?.flush()
        }
    }

    /// A message with gRPC's five-byte prefix: not compressed, its length.
    private func frame(_ message: [UInt8]) -> ByteBuffer {
        var buffer = context!.channel.allocator.buffer(capacity: 5 + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        return buffer
    }

    static func status(_ error: GRPCMessageReader.Failure) -> Status {
        switch error {
        case .tooLarge(let length, let limit):
            Status(code: .resourceExhausted, message: "grpc: received message larger than max (\(length) vs. \(limit))")
        case .compressed:
            Status(code: .internalError, message: "grpc: compressed flag set with identity or empty encoding")
        }
    }

    /// `/package.Service/Method` as grpc-swift's descriptor.
    static func descriptor(_ path: String) -> MethodDescriptor? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return MethodDescriptor(fullyQualifiedService: String(parts[1]), method: String(parts[2]))
    }

    /// grpc-swift's form of a peer address: `ipv4:127.0.0.1:2379`.
    static func peer(_ address: SocketAddress?) -> String {
        switch address {
        case .v4(let v4)?: "ipv4:\(v4.host):\(address!.port ?? 0)"
        case .v6(let v6)?: "ipv6:[\(v6.host)]:\(address!.port ?? 0)"
        case .unixDomainSocket?: "unix:\(address!.pathname ?? "")"
        case nil: "unknown"
        }
    }
}
