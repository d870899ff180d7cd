import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

/// grpc-swift's server transport for one client URL: the calls that
/// `GRPCConnectionHandler`s hand over (everything but the unary KV calls)
/// reach the gRPC server through it. Accepting on the URL's socket starts
/// when the server listens; graceful shutdown stops accepting and sends
/// every connection a GOAWAY; cancelling the server closes the connections.
final class ClientGRPCTransport: ServerTransport, Sendable {
    typealias Bytes = [UInt8]

    struct Accepted: Sendable {
        let stream: RPCStream<Inbound, Outbound>
        let context: ServerContext
    }

    private struct Connection {
        let loop: any EventLoop
        let handler: GRPCConnectionHandler
    }

    private struct State {
        var connections: [ObjectIdentifier: Connection] = [:]
        var shuttingDown = false
    }

    private let state = NIOLockedValueBox(State())
    private let incoming: AsyncStream<Accepted>
    private let sink: AsyncStream<Accepted>.Continuation
    /// Starts accepting on the listener's socket.
    private let startAccepting: @Sendable () async throws -> Void
    /// Closes the listener's socket.
    private let stopAccepting: @Sendable () -> Void

    init(startAccepting: @escaping @Sendable () async throws -> Void, stopAccepting: @escaping @Sendable () -> Void) {
        (incoming, sink) = AsyncStream<Accepted>.makeStream()
        self.startAccepting = startAccepting
        self.stopAccepting = stopAccepting
    }

    func listen(streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void) async throws {
        try await startAccepting()
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await accepted in incoming {
                    group.addTask { await streamHandler(accepted.stream, accepted.context) }
                }
            }
        } onCancel: {
            shutDown { $0.handler.closeNow() }
        }
    }

    func beginGracefulShutdown() {
        shutDown { $0.handler.goAway() }
    }

    private func shutDown(_ each: @escaping @Sendable (Connection) -> Void) {
        let connections = state.withLockedValue { state in
            state.shuttingDown = true
            return Array(state.connections.values)
        }
        stopAccepting()
        sink.finish()
        for connection in connections {
            connection.loop.execute { each(connection) }
        }
    }

    /// A connection starts; false once the transport shuts down.
    func register(_ handler: GRPCConnectionHandler, on loop: any EventLoop) -> Bool {
        state.withLockedValue { state in
            guard !state.shuttingDown else { return false }
            state.connections[ObjectIdentifier(handler)] = Connection(loop: loop, handler: handler)
            return true
        }
    }

    func unregister(_ handler: GRPCConnectionHandler) {
        _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(handler)) }
    }

    /// Hand a call to the gRPC server; false once it stopped taking calls.
    func deliver(_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext) -> Bool {
        if case .enqueued = sink.yield(Accepted(stream: stream, context: context)) { return true }
        return false
    }
}
