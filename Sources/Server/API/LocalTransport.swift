import GRPCCore
import GRPCInProcessTransport
import NIOConcurrencyHelpers

/// gRPC inside the member: grpc-swift's in-process transport, plus the one
/// thing it lacks, a client that leaves cancels the RPC on the server.
///
/// Over HTTP/2 a client that goes away resets its stream and the server
/// cancels the RPC (`ServerContext.cancellation`). The in-process client
/// only finishes its request stream, so a handler that waits (a lock
/// waiter, an election candidate, an observer) would wait on for nobody,
/// and a lock waiter would at last take the lock for a caller long gone.
/// Here each client stream carries an id in its metadata; the server
/// side files the RPC's cancellation handle under it, and the client
/// cancels that handle when its call ends, however it ends (after a
/// finished RPC that changes nothing).
enum LocalTransport {
    static let streamIDKey = "ballot-local-stream"

    static func make() -> (client: Client, server: Server) {
        let inner = InProcessTransport()
        let registry = Registry()
        return (Client(inner: inner.client, registry: registry), Server(inner: inner.server, registry: registry))
    }

    /// The servers' cancellation handles by stream id. An entry lives
    /// until both sides are done with it: the client's call ended and the
    /// server's handler returned, in either order. A client that ends
    /// before the server saw its stream leaves `.clientGone`, so the server
    /// cancels the RPC as soon as it starts.
    final class Registry: Sendable {
        enum Entry {
            /// The server runs the RPC; the client has not ended.
            case serving(ServerContext.RPCCancellationHandle)
            /// The client ended; the server has not finished (or started).
            case clientGone
            /// The server finished; the client has not ended.
            case serverDone
        }

        private let state = NIOLockedValueBox<(next: UInt64, entries: [UInt64: Entry])>((0, [:]))

        func newID() -> UInt64 {
            state.withLockedValue { state in
                defer { state.next += 1 }
                return state.next
            }
        }

        /// Entries not yet closed by both sides (for tests: 0 when idle).
        var openEntries: Int { state.withLockedValue { $0.entries.count } }

        /// The client's task was cancelled: cancel the server's RPC now.
        /// (Its call ends afterwards, and `clientEnded` does the accounting.)
        func clientCancelled(_ id: UInt64) {
            let handle: ServerContext.RPCCancellationHandle? = state.withLockedValue { state in
                if case .serving(let handle) = state.entries[id] { return handle }
                return nil
            }
            handle?.cancel()
        }

        /// The client's call ended, however: cancel the server's RPC if it runs.
        func clientEnded(_ id: UInt64) {
            let handle: ServerContext.RPCCancellationHandle? = state.withLockedValue { state in
                switch state.entries[id] {
                case .serving(let handle):
                    state.entries[id] = .clientGone
                    return handle
                case .serverDone:
                    state.entries[id] = nil
                case .clientGone, nil:
                    state.entries[id] = .clientGone
                }
                return nil
            }
            handle?.cancel()
        }

        /// The server read the stream's metadata.
        func serving(_ id: UInt64, _ handle: ServerContext.RPCCancellationHandle) {
            let gone: Bool = state.withLockedValue { state in
                if case .clientGone = state.entries[id] { return true }
                state.entries[id] = .serving(handle)
                return false
            }
            if gone { handle.cancel() }
        }

        /// The server's handler returned.
        func served(_ id: UInt64) {
            state.withLockedValue { state in
                switch state.entries[id] {
                case .serving: state.entries[id] = .serverDone
                case .clientGone, .serverDone, nil: state.entries[id] = nil
                }
            }
        }
    }

    struct Client: ClientTransport {
        typealias Bytes = [UInt8]
        let inner: InProcessTransport.Client
        let registry: Registry

        var retryThrottle: RetryThrottle? { inner.retryThrottle }
        func connect() async throws { try await inner.connect() }
        func beginGracefulShutdown() { inner.beginGracefulShutdown() }
        func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? { inner.config(forMethod: descriptor) }

        func withStream<T: Sendable>(
            descriptor: MethodDescriptor, options: CallOptions,
            _ closure: (_ stream: RPCStream<Inbound, Outbound>, _ context: ClientContext) async throws -> T
        ) async throws -> T {
            let id = registry.newID()
            defer { registry.clientEnded(id) }
            return try await withTaskCancellationHandler {
                try await inner.withStream(descriptor: descriptor, options: options) { stream, context in
                    let tagged = RPCStream(
                        descriptor: stream.descriptor, inbound: stream.inbound,
                        outbound: RPCWriter.Closable(wrapping: TaggingWriter(inner: stream.outbound, id: id)))
                    return try await closure(tagged, context)
                }
            } onCancel: {
                registry.clientCancelled(id)
            }
        }
    }

    /// Adds the stream id to the request's metadata, the stream's first part.
    struct TaggingWriter: ClosableRPCWriterProtocol {
        typealias Element = RPCRequestPart<[UInt8]>
        let inner: RPCWriter<RPCRequestPart<[UInt8]>>.Closable
        let id: UInt64

        func write(_ element: Element) async throws {
            guard case .metadata(var metadata) = element else { return try await inner.write(element) }
            metadata.replaceOrAddString(String(id), forKey: LocalTransport.streamIDKey)
            try await inner.write(.metadata(metadata))
        }

        func write(contentsOf elements: some Sequence<Element>) async throws {
            for element in elements { try await write(element) }
        }

        func finish() async { await inner.finish() }
        func finish(throwing error: any Error) async { await inner.finish(throwing: error) }
    }

    struct Server: ServerTransport {
        typealias Bytes = [UInt8]
        let inner: InProcessTransport.Server
        let registry: Registry

        func listen(
            streamHandler: @escaping @Sendable (_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext) async -> Void
        ) async throws {
            let registry = self.registry
            try await inner.listen { stream, context in
                let filed = NIOLockedValueBox<UInt64?>(nil)
                let inbound = stream.inbound.map { part -> RPCRequestPart<[UInt8]> in
                    if case .metadata(let metadata) = part,
                       let text = metadata[stringValues: LocalTransport.streamIDKey].first(where: { _ in true }),
                       let id = UInt64(text) {
                        filed.withLockedValue { $0 = id }
                        registry.serving(id, context.cancellation)
                    }
                    return part
                }
                await streamHandler(
                    RPCStream(descriptor: stream.descriptor, inbound: RPCAsyncSequence(wrapping: inbound), outbound: stream.outbound),
                    context)
                if let id = filed.withLockedValue({ $0 }) { registry.served(id) }
            }
        }

        func beginGracefulShutdown() { inner.beginGracefulShutdown() }
    }
}

/// Runs a server handler's long wait so that it ends when the RPC is
/// cancelled (the client left), not only when its task is: grpc-swift
/// signals a cancelled RPC through `ServerContext.cancellation` and leaves
/// the handler's task running.
func untilRPCCancelled<T: Sendable>(_ context: ServerContext, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await context.cancellation.cancelled
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw CancellationError() }
        return result
    }
}
