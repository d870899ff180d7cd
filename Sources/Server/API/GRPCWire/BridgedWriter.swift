import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

/// grpc-swift's response writer for a call it serves over
/// `GRPCConnectionHandler`: each part goes to the connection's event loop;
/// once more than `queuedBytesMax` bytes wait for the socket, a write
/// waits for its own bytes to leave, so a client that stops reading holds
/// back its own call and nothing piles up in memory.
struct BridgedWriter: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<[UInt8]>

    let loop: any EventLoop
    let queuedBytesMax: Int
    /// Runs on the event loop: writes the part and completes the promise when it left.
    let send: @Sendable (RPCResponsePart<[UInt8]>, EventLoopPromise<Void>) -> Void
    private let queued = NIOLockedValueBox(0)

    init(loop: any EventLoop, queuedBytesMax: Int, send: @escaping @Sendable (RPCResponsePart<[UInt8]>, EventLoopPromise<Void>) -> Void) {
        precondition(queuedBytesMax > 0, "a write queue holds something")
        self.loop = loop
        self.queuedBytesMax = queuedBytesMax
        self.send = send
    }

    func write(_ element: Element) async throws {
        let bytes: Int
        if case .message(let message) = element { bytes = message.count + 5 } else { bytes = 0 }
        let promise = loop.makePromise(of: Void.self)
        let queued = self.queued
        let waiting = queued.withLockedValue { total in
            total += bytes
            return total
        }
        promise.futureResult.whenComplete { _ in queued.withLockedValue { $0 -= bytes } }
        let send = self.send
        loop.execute { send(element, promise) }
        if waiting > queuedBytesMax || bytes == 0 {
            // Metadata and status are rare: waiting for them also surfaces a closed stream.
            try await promise.futureResult.get()
        }
    }

    func write(contentsOf elements: some Sequence<Element>) async throws {
        for element in elements { try await write(element) }
    }

    /// grpc-swift sends the status before finishing; nothing is left to do.
    func finish() async {}

    func finish(throwing error: any Error) async {}
}

/// A call's request parts, reporting each message's bytes once its handler
/// took it, so the connection can reopen the stream's window.
struct ConsumptionReporting: AsyncSequence, Sendable {
    typealias Element = RPCRequestPart<[UInt8]>
    let base: AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>
    let report: @Sendable (Int) -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>.AsyncIterator
        let report: @Sendable (Int) -> Void

        mutating func next() async throws -> RPCRequestPart<[UInt8]>? {
            let part = try await base.next()
            if case .message(let message)? = part { report(message.count + 5) }
            return part
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), report: report)
    }
}
