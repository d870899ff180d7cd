import ArgumentParser
import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram
import NIOCore
import NIOPosix
import Storage

/// The two candidate peer transports side by side, in one process on
/// loopback: a gRPC client stream (`PeerBenchmark.Send`, how members talked
/// before the frames) and length-prefixed frames on a plain swift-nio TCP
/// connection (the shape members now use). Both
/// carry the same consensus messages, encoded by the same codec and decoded
/// on arrival. Measures one-way throughput at several batch sizes and the
/// round trip of a small request.
struct TransportBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "Compare the peer transports: gRPC streams and framed TCP on swift-nio.")

    @Option(help: "Messages sent per run.") var messages = 200_000
    @Option(help: "Comma-separated messages per frame (batch sizes).") var batches = "1,16,256"
    @Option(help: "Bytes of the entry each append message carries.") var entryBytes = 256
    @Option(help: "Round trips measured for latency.") var roundTrips = 5_000

    func validate() throws {
        guard (1...10_000_000).contains(messages) else { throw ValidationError("--messages takes 1...10000000") }
        guard (0...(1 << 20)).contains(entryBytes) else { throw ValidationError("--entry-bytes takes 0...1048576") }
        guard (1...1_000_000).contains(roundTrips) else { throw ValidationError("--round-trips takes 1...1000000") }
    }

    func run() async throws {
        let sizes = try batches.split(separator: ",").map { text -> Int in
            guard let n = Int(text), (1...65_536).contains(n) else { throw ValidationError("batch '\(text)' is not in 1...65536") }
            return n
        }
        let message = Consensus.Message(
            from: 1, to: 2, term: 7,
            kind: .append(prevIndex: 41, prevTerm: 7, entries: [Entry(term: 7, index: 42, payload: .command(Array(repeating: 0x61, count: entryBytes)))], commit: 40))
        let encoded = ConsensusCodec.encode(message)
        print("transport benchmark: \(messages) append messages of \(encoded.count) bytes each, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print(String(format: "%-6@ %8@ %14@ %10@", "kind", "batch", "messages/s", "MB/s"))
        var throughput: [String: [Int: Double]] = [:]
        for size in sizes {
            for kind in ["grpc", "tcp"] {
                let rate = kind == "grpc"
                    ? try await GRPCTransportRun.throughput(encoded, total: messages, batch: size)
                    : try await TCPTransportRun.throughput(encoded, total: messages, batch: size)
                throughput[kind, default: [:]][size] = rate
                print(String(format: "%-6@ %8d %14.0f %10.1f", kind, size, rate, rate * Double(encoded.count) / 1e6))
            }
        }
        print(String(format: "%-6@ %10@ %10@ %10@", "kind", "rtt p50", "p99", "p99.9"))
        for kind in ["grpc", "tcp"] {
            let histogram = kind == "grpc"
                ? try await GRPCTransportRun.roundTrips(roundTrips)
                : try await TCPTransportRun.roundTrips(roundTrips)
            func us(_ q: Double) -> Double { Double(histogram.valueAtPercentile(q)) / 1000 }
            print(String(format: "%-6@ %8.0fus %8.0fus %8.0fus", kind, us(50), us(99), us(99.9)))
        }
        for size in sizes {
            let ratio = throughput["tcp"]![size]! / throughput["grpc"]![size]!
            print(String(format: "ratio tcp/grpc at batch %d: %.2fx", size, ratio))
        }
    }
}

/// Counts decoded messages until a target, then resumes a waiter.
final class ArrivalCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var target = Int.max
    private var waiter: CheckedContinuation<Void, Never>?

    func add(_ n: Int) {
        let done: CheckedContinuation<Void, Never>? = lock.withLock {
            count += n
            guard count >= target, let waiter else { return nil }
            self.waiter = nil
            return waiter
        }
        done?.resume()
    }

    func reset() { lock.withLock { count = 0 } }

    func wait(for total: Int) async {
        await withCheckedContinuation { continuation in
            let now: Bool = lock.withLock {
                if count >= total { return true }
                target = total
                waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

func decodeAll(_ frames: [[UInt8]]) -> Int {
    var decoded = 0
    for bytes in frames where ConsensusCodec.decodeMessage(bytes) != nil { decoded += 1 }
    return decoded
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

// MARK: gRPC

/// The receiving side of `PeerBenchmark.Send` as a member would run it (decode every
/// message), and `Ping` for round trips.
struct CountingPeerService: Ballotpb_PeerBenchmark.SimpleServiceProtocol {
    let counter: ArrivalCounter

    func send(request: RPCAsyncSequence<Ballotpb_PeerBatch, any Error>, context: ServerContext) async throws -> Ballotpb_PeerAck {
        for try await batch in request { counter.add(decodeAll(batch.messages.map { [UInt8]($0) })) }
        return Ballotpb_PeerAck()
    }

    func ping(request: Ballotpb_PingRequest, context: ServerContext) async throws -> Ballotpb_PingResponse { Ballotpb_PingResponse() }

}

enum GRPCTransportRun {
    static func withPair<T: Sendable>(
        _ counter: ArrivalCounter, _ body: @escaping @Sendable (Ballotpb_PeerBenchmark.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext,
                                      config: .defaults { $0.rpc.maxRequestPayloadSize = 256 << 20 }),
            services: [CountingPeerService(counter: counter)])
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await server.serve(); return nil }
            guard let address = try await server.listeningAddress?.ipv4 else { throw ValidationError("no listening address") }
            let client = GRPCClient(transport: try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: address.port), transportSecurity: .plaintext))
            group.addTask { try await client.runConnections(); return nil }
            let result = try await body(Ballotpb_PeerBenchmark.Client(wrapping: client))
            client.beginGracefulShutdown()
            server.beginGracefulShutdown()
            for try await _ in group {}
            return result
        }
    }

    static func throughput(_ encoded: [UInt8], total: Int, batch: Int) async throws -> Double {
        let counter = ArrivalCounter()
        return try await withPair(counter) { peer in
            let data = Data(encoded)
            let start = ContinuousClock.now
            _ = try await peer.send(requestProducer: { writer in
                var sent = 0
                while sent < total {
                    let n = min(batch, total - sent)
                    var frame = Ballotpb_PeerBatch()
                    frame.clusterID = 1
                    frame.from = 1
                    frame.messages = Array(repeating: data, count: n)
                    try await writer.write(frame)
                    sent += n
                }
                await counter.wait(for: total)
            })
            return Double(total) / seconds(since: start)
        }
    }

    static func roundTrips(_ count: Int) async throws -> Histogram<UInt64> {
        try await withPair(ArrivalCounter()) { peer in
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var request = Ballotpb_PingRequest()
            request.clusterID = 1
            for _ in 0..<100 { _ = try await peer.ping(request) }
            for _ in 0..<count {
                let start = ContinuousClock.now
                _ = try await peer.ping(request)
                let d = ContinuousClock.now - start
                histogram.record(UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000))
            }
            return histogram
        }
    }
}

// MARK: Framed TCP

/// Frames: a 4-byte big-endian length, then a kind byte (0: messages, 1:
/// ping, answered by an empty frame), then for messages a 4-byte count and
/// each message as length + bytes.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    static let frameBytesMax = 256 << 20

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= Self.frameBytesMax else { throw ValidationError("frame of \(length) bytes") }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

final class FrameReceiver: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let counter: ArrivalCounter
    init(counter: ArrivalCounter) { self.counter = counter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let kind = frame.readInteger(as: UInt8.self) else { return }
        if kind == 1 {
            var answer = context.channel.allocator.buffer(capacity: 5)
            answer.writeInteger(UInt32(1))
            answer.writeInteger(UInt8(2))
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            return
        }
        guard let count = frame.readInteger(as: UInt32.self) else { return }
        var messages: [[UInt8]] = []
        messages.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = frame.readInteger(as: UInt32.self), let bytes = frame.readBytes(length: Int(length)) else { return }
            messages.append(bytes)
        }
        counter.add(decodeAll(messages))
    }
}

/// The client end: completes the oldest waiting ping on each answer.
final class PingAnswers: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var waiting: [EventLoopPromise<Void>] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !waiting.isEmpty { waiting.removeFirst().succeed() }
    }
}

enum TCPTransportRun {
    static let flushWindow = 64

    static func withPair<T>(_ counter: ArrivalCounter, _ body: (Channel, PingAnswers) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FrameReceiver(counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let answers = PingAnswers()
        let client = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(answers)
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        defer {
            client.close(promise: nil)
            server.close(promise: nil)
        }
        return try await body(client, answers)
    }

    static func throughput(_ encoded: [UInt8], total: Int, batch: Int) async throws -> Double {
        let counter = ArrivalCounter()
        return try await withPair(counter) { channel, _ in
            let start = ContinuousClock.now
            var sent = 0
            var frames = 0
            while sent < total {
                let n = min(batch, total - sent)
                var frame = channel.allocator.buffer(capacity: 9 + n * (4 + encoded.count))
                frame.writeInteger(UInt32(5 + n * (4 + encoded.count)))
                frame.writeInteger(UInt8(0))
                frame.writeInteger(UInt32(n))
                for _ in 0..<n {
                    frame.writeInteger(UInt32(encoded.count))
                    frame.writeBytes(encoded)
                }
                sent += n
                // Each frame is flushed as a member would flush a batch the
                // moment it is ready; the sender waits for the socket only
                // every `flushWindow` frames (gRPC's writer buffers likewise).
                let written = channel.eventLoop.makePromise(of: Void.self)
                channel.writeAndFlush(frame, promise: written)
                frames += 1
                if frames % Self.flushWindow == 0 { try await written.futureResult.get() }
            }
            await counter.wait(for: total)
            return Double(total) / seconds(since: start)
        }
    }

    static func roundTrips(_ count: Int) async throws -> Histogram<UInt64> {
        try await withPair(ArrivalCounter()) { channel, answers in
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for i in 0..<(count + 100) {
                let start = ContinuousClock.now
                let promise = channel.eventLoop.makePromise(of: Void.self)
                var ping = channel.allocator.buffer(capacity: 5)
                ping.writeInteger(UInt32(1))
                ping.writeInteger(UInt8(1))
                try await channel.eventLoop.submit {
                    answers.waiting.append(promise)
                    channel.writeAndFlush(ping, promise: nil)
                }.get()
                try await promise.futureResult.get()
                let d = ContinuousClock.now - start
                if i >= 100 {
                    histogram.record(UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000))
                }
            }
            return histogram
        }
    }
}
