import NIOPosix
import Logging
import Consensus
import NIOCore
@testable import Server
import Testing

/// The peer protocol's frames: each kind reads back as written, and a
/// frame this code did not write is refused rather than guessed at.
@Suite struct PeerFrameTests {
    static func body(of frame: PeerFrame) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try frame.write(to: &buffer)
        let length = buffer.readInteger(as: UInt32.self)!
        #expect(Int(length) == buffer.readableBytes)
        return buffer
    }

    static func bytes(_ body: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: body) }

    @Test(arguments: [
        PeerFrame.hello(version: PeerFrame.protocolVersion, clusterID: 0xDEAD_BEEF_0102_0304, from: NodeID(77), to: NodeID(78), nonce: Array(0..<16), engine: 1),
        .challenge(nonce: [1, 2], proof: Array(repeating: 7, count: 32)),
        .proof([]),
        .proof([3, 4, 5]),
        .refused(.removed, message: "gone ✓"),
        .messages([]),
        .messages([[1, 2, 3], [], [9, 9, 9, 9]]),
        .request(id: 42, kind: .forward, payload: [0, 1, 2]),
        .request(id: .max, kind: .ping, payload: []),
        .response(id: 42, code: 14, message: "etcdserver: no leader", payload: []),
        .response(id: 1, code: 0, message: "", payload: [5, 6, 7, 8, 9, 10, 11, 12]),
        .snapshotStart(announce: [4, 4], size: 1 << 40, checksum: 0xFFFF_FFFF),
        .snapshotData([0xAB, 0xCD]),
        .discover(version: 1, peerURL: "https://10.0.0.7:2380"),
        .discovered(clusterID: 9, memberID: NodeID(3), members: []),
        .discovered(clusterID: .max, memberID: NodeID(2), members: [.init(id: NodeID(1), peerURL: "http://a:1"), .init(id: NodeID(2), peerURL: "")]),
    ])
    func everyKindReadsBackAsWritten(_ frame: PeerFrame) throws {
        var body = try Self.body(of: frame)
        #expect(try PeerFrame(body: &body) == frame)
    }

    @Test func largeFieldsReadBackWhole() throws {
        let frame = PeerFrame.snapshotData(Array(repeating: 0xAB, count: PeerTransport.snapshotChunkBytes))
        var body = try Self.body(of: frame)
        #expect(try PeerFrame(body: &body) == frame)
    }

    @Test func aFrameNoPeerWouldReadIsNotWritten() throws {
        var buffer = ByteBuffer(bytes: [7])
        let frame = PeerFrame.snapshotData(Array(repeating: 1, count: PeerFrame.bytesMax))
        #expect(throws: PeerFrameError.tooLarge(bytes: PeerFrame.bytesMax + 5)) { try frame.write(to: &buffer) }
        #expect(Array(buffer.readableBytesView) == [7], "nothing of the refused frame stays behind")
    }

    @Test func trailingOrMissingBytesAreRefused() throws {
        var written = try Self.body(of: .request(id: 7, kind: .lease, payload: [1, 2, 3]))
        var longer = written
        longer.writeInteger(UInt8(0))
        #expect(throws: PeerFrameError.malformed(kind: 4)) { try PeerFrame(body: &longer) }
        var shorter = written.readSlice(length: written.readableBytes - 1)!
        #expect(throws: PeerFrameError.malformed(kind: 4)) { try PeerFrame(body: &shorter) }
        var empty = ByteBuffer()
        #expect(throws: PeerFrameError.malformed(kind: 0)) { try PeerFrame(body: &empty) }
    }

    @Test func unknownKindsAndFieldsAreRefused() {
        var unknown = Self.bytes([99, 0, 0])
        #expect(throws: PeerFrameError.unknownKind(99)) { try PeerFrame(body: &unknown) }
        // A request of an unknown request kind.
        var request = Self.bytes([4, 0, 0, 0, 0, 0, 0, 0, 1, 200, 0, 0, 0, 0])
        #expect(throws: PeerFrameError.malformed(kind: 4)) { try PeerFrame(body: &request) }
        // A refusal with an unknown reason.
        var refusal = Self.bytes([2, 0, 0, 0, 0, 0])
        #expect(throws: PeerFrameError.malformed(kind: 2)) { try PeerFrame(body: &refusal) }
        // A batch claiming more messages than its bytes can hold is refused
        // before anything is reserved for them.
        var batch = Self.bytes([3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(throws: PeerFrameError.malformed(kind: 3)) { try PeerFrame(body: &batch) }
        // So is a member list claiming more members than its bytes can hold.
        var discovered = Self.bytes([9] + Array(repeating: 0, count: 16) + [0xFF, 0xFF, 0xFF, 0xFF] + Array(repeating: 0, count: 12))
        #expect(throws: PeerFrameError.malformed(kind: 9)) { try PeerFrame(body: &discovered) }
    }

    @Test func queuedMessagesAreSplitIntoFramesUnderTheTarget() {
        let sixMiB = Array(repeating: UInt8(1), count: 6 << 20)
        let huge = Array(repeating: UInt8(2), count: PeerFrame.batchBytesTarget + 1)
        let items: [[UInt8]] = [sixMiB, [3], sixMiB, sixMiB, huge, [4]]
        let batches = PeerLink.batches(items)
        #expect(batches.flatMap { $0 } == items, "every message, in order")
        for batch in batches where batch.count > 1 {
            #expect(batch.reduce(0) { $0 + 4 + $1.count } <= PeerFrame.batchBytesTarget)
        }
        #expect(batches.map(\.count) == [3, 1, 1, 1], "\(batches.map(\.count))")
        #expect(PeerLink.batches([]).isEmpty)
    }
}

/// A peer proof holds for the one connection it was made for: the same
/// secret, side, cluster, members and nonces, and nothing else.
@Suite struct PeerSecretTests {
    @Test func aProofIsBoundToEveryField() throws {
        let secret = try PeerSecret(bytes: Array("sixteen or more bytes of secret".utf8))
        let other = try PeerSecret(bytes: Array("another sixteen or more bytes".utf8))
        let (d, l) = (PeerHandshake.nonce(), PeerHandshake.nonce())
        #expect(d != l && d.count == PeerHandshake.nonceBytes)
        let proof = secret.proof(.dialler, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l)
        #expect(secret.verify(proof, .dialler, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!other.verify(proof, .dialler, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify(proof, .listener, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify(proof, .dialler, clusterID: 8, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify(proof, .dialler, clusterID: 7, from: 3, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify(proof, .dialler, clusterID: 7, from: 1, to: 3, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify(proof, .dialler, clusterID: 7, from: 1, to: 2, diallerNonce: l, listenerNonce: d))
        #expect(!secret.verify(Array(proof.dropLast()), .dialler, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
        #expect(!secret.verify([], .dialler, clusterID: 7, from: 1, to: 2, diallerNonce: d, listenerNonce: l))
    }
}

/// A listener that accepts a connection and never answers does not hold
/// the dialler: its handshake gives up after `answerSecondsMax`.
@Suite struct PeerHandshakeTests {
    @Test(.timeLimit(.minutes(15))) func aSilentListenerIsGivenUpOn() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = try #require(silent.localAddress?.port)
        let connection = try await PeerTransport.dial(HostPort(host: "127.0.0.1", port: port), tls: try TLSContexts.defaultClient(),
                                                      rule: nil, logger: Logger(label: "test"))
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                try await PeerHandshake.dial(PeerHandshake.hello(clusterID: 1, from: 1, to: 2, engine: .raft), secret: nil, on: connection.channel,
                                             frames: &frames, outbound: outbound)
            }
        }
        // Not before its time (how long after depends on the machine's load, and is not asserted).
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(PeerHandshake.answerSecondsMax), "\(waited)")
    }
}
