import Engines
import Consensus
import NIOCore

/// One unit of the peer protocol: members talk over plain TCP in
/// length-prefixed frames (measured against gRPC streams in
/// BENCHMARKS.md: several times the throughput and a tenth of the round
/// trip on loopback).
///
/// On the wire a frame is a 4-byte big-endian length of what follows, a
/// kind byte, then the kind's fields, big-endian, byte strings as a 4-byte
/// length and the bytes. Every connection starts with the dialler's
/// `hello`, the listener's `challenge` and the dialler's `proof`
/// (`PeerHandshake`); then the listener answers only requests, and
/// `refused` when it will not talk to the dialler.
enum PeerFrame: Equatable, Sendable {
    /// The dialler names itself, the member it means to reach and its
    /// cluster, with a fresh nonce for the listener's proof; once, first.
    case hello(version: UInt16, clusterID: UInt64, from: NodeID, to: NodeID, nonce: [UInt8], engine: UInt8)
    /// The listener's answer to a hello it admits: its own fresh nonce, and
    /// its proof that it holds the cluster's peer secret (empty without one).
    case challenge(nonce: [UInt8], proof: [UInt8])
    /// The dialler's proof that it holds the peer secret (empty without
    /// one); the listener serves nothing before it checked this.
    case proof([UInt8])
    /// The listener will not talk to this dialler, and closes.
    case refused(PeerRefusal, message: String)
    /// Consensus messages, each encoded by `ConsensusCodec`.
    case messages([[UInt8]])
    /// A question for the listener, answered by a `response` with the same id.
    case request(id: UInt64, kind: PeerRequestKind, payload: [UInt8])
    /// `code` 0 with the answer's bytes, or a gRPC status code and etcd's message.
    case response(id: UInt64, code: UInt32, message: String, payload: [UInt8])
    /// The start of a snapshot transfer: the consensus message that
    /// announces it, and the size and CRC-32C of the bytes that follow.
    case snapshotStart(announce: [UInt8], size: UInt64, checksum: UInt32)
    /// The next bytes of the snapshot announced on this connection.
    case snapshotData([UInt8])
    /// Instead of a hello, from a member joining a running cluster
    /// (`ClusterDiscovery`): which member is the one at `peerURL`?
    case discover(version: UInt16, peerURL: String)
    /// The answer to `discover`, and the listener closes: the cluster, the
    /// asker's ID (the cluster chose it at `member add`), and every
    /// member's ID and peer URL, so the joiner can reach them all.
    case discovered(clusterID: UInt64, memberID: NodeID, members: [DiscoveredMember])

    /// One member, as `discovered` lists them.
    struct DiscoveredMember: Equatable, Sendable {
        var id: NodeID
        var peerURL: String
    }

    /// Changes whenever a frame's layout does; members refuse other versions.
    static let protocolVersion: UInt16 = 4
    /// The largest frame either side accepts: a batch of appends, each at
    /// most the core's append limit, or a snapshot chunk.
    static let bytesMax = 256 << 20
    /// A sender closes a batch of messages at this size and starts another,
    /// so one frame never nears `bytesMax`.
    static let batchBytesTarget = 16 << 20
}

/// Why a listener refused a dialler.
enum PeerRefusal: UInt8, Sendable {
    /// The dialler belongs to another cluster (another --initial-cluster-token).
    case wrongCluster = 1
    /// The dialler was removed from the configuration: it should stop.
    case removed = 2
    /// The dialler speaks another version of this protocol.
    case wrongVersion = 3
    /// The connection did not start with a hello.
    case noHello = 4
    /// The dialler's certificate fails the listener's `PeerCertificateRule`.
    case badCertificate = 5
    /// The dialler claims an ID this member does not know as a member, or
    /// meant to reach another member than this one.
    case notMember = 6
    /// The dialler did not prove it holds the cluster's peer secret.
    case unproven = 7
    /// The dialler runs the other consensus engine (`--engine`).
    case wrongEngine = 8

    /// The metrics' label for it.
    var label: String {
        switch self {
        case .wrongCluster: "wrong_cluster"
        case .removed: "removed"
        case .wrongVersion: "wrong_version"
        case .noHello: "no_hello"
        case .badCertificate: "bad_certificate"
        case .notMember: "not_member"
        case .unproven: "unproven"
        case .wrongEngine: "wrong_engine"
        }
    }
}

/// What a follower asks its leader, and the leader's probe.
enum PeerRequestKind: UInt8, Sendable {
    /// A proposal (`Ballotpb_Command`) answered with its `Ballotpb_CommandResult`.
    case forward = 1
    // 2 was a read index asked this way (protocol version 1); a follower's
    // read index is now a consensus message (`Message.Kind.readIndex`).
    /// `Ballotpb_LeaseForward`, answered with `Ballotpb_LeaseForwardResponse`.
    case lease = 3
    /// `Ballotpb_MembershipForward`, answered with `Ballotpb_MembershipForwardResponse`.
    case membership = 4
    /// Empty both ways: measures the round trip and keeps the link honest.
    case ping = 5
}

/// A frame that cannot be read: the connection is closed, nothing it
/// carried is trusted.
enum PeerFrameError: Error, Equatable, CustomStringConvertible {
    case tooLarge(bytes: Int)
    case unknownKind(UInt8)
    case malformed(kind: UInt8)

    var description: String {
        switch self {
        case .tooLarge(let bytes): "peer frame of \(bytes) bytes exceeds the limit"
        case .unknownKind(let kind): "peer frame of unknown kind \(kind)"
        case .malformed(let kind): "peer frame of kind \(kind) does not match its length"
        }
    }
}

extension PeerFrame {
    private enum Kind: UInt8 {
        case hello = 1, refused, messages, request, response, snapshotStart, snapshotData, discover, discovered, challenge, proof
    }

    /// Append this frame, length first, to `buffer`; refuses (and writes
    /// nothing) a frame longer than `bytesMax`, which no peer would read.
    func write(to buffer: inout ByteBuffer) throws(PeerFrameError) {
        let lengthAt = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        switch self {
        case .hello(let version, let clusterID, let from, let to, let nonce, let engine):
            buffer.writeInteger(Kind.hello.rawValue)
            buffer.writeInteger(version)
            buffer.writeInteger(clusterID)
            buffer.writeInteger(from.rawValue)
            buffer.writeInteger(to.rawValue)
            Self.writeBytes(nonce, to: &buffer)
            if version >= 4 { buffer.writeInteger(engine) }
        case .challenge(let nonce, let proof):
            buffer.writeInteger(Kind.challenge.rawValue)
            Self.writeBytes(nonce, to: &buffer)
            Self.writeBytes(proof, to: &buffer)
        case .proof(let proof):
            buffer.writeInteger(Kind.proof.rawValue)
            Self.writeBytes(proof, to: &buffer)
        case .refused(let reason, let message):
            buffer.writeInteger(Kind.refused.rawValue)
            buffer.writeInteger(reason.rawValue)
            Self.writeBytes(Array(message.utf8), to: &buffer)
        case .messages(let messages):
            buffer.writeInteger(Kind.messages.rawValue)
            buffer.writeInteger(UInt32(messages.count))
            for message in messages { Self.writeBytes(message, to: &buffer) }
        case .request(let id, let kind, let payload):
            buffer.writeInteger(Kind.request.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(kind.rawValue)
            Self.writeBytes(payload, to: &buffer)
        case .response(let id, let code, let message, let payload):
            buffer.writeInteger(Kind.response.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(code)
            Self.writeBytes(Array(message.utf8), to: &buffer)
            Self.writeBytes(payload, to: &buffer)
        case .snapshotStart(let announce, let size, let checksum):
            buffer.writeInteger(Kind.snapshotStart.rawValue)
            Self.writeBytes(announce, to: &buffer)
            buffer.writeInteger(size)
            buffer.writeInteger(checksum)
        case .snapshotData(let bytes):
            buffer.writeInteger(Kind.snapshotData.rawValue)
            Self.writeBytes(bytes, to: &buffer)
        case .discover(let version, let peerURL):
            buffer.writeInteger(Kind.discover.rawValue)
            buffer.writeInteger(version)
            Self.writeBytes(Array(peerURL.utf8), to: &buffer)
        case .discovered(let clusterID, let memberID, let members):
            buffer.writeInteger(Kind.discovered.rawValue)
            buffer.writeInteger(clusterID)
            buffer.writeInteger(memberID.rawValue)
            buffer.writeInteger(UInt32(members.count))
            for member in members {
                buffer.writeInteger(member.id.rawValue)
                Self.writeBytes(Array(member.peerURL.utf8), to: &buffer)
            }
        }
        let length = buffer.writerIndex - lengthAt - 4
        guard length <= Self.bytesMax else {
            buffer.moveWriterIndex(to: lengthAt)
            throw .tooLarge(bytes: length)
        }
        buffer.setInteger(UInt32(length), at: lengthAt)
    }

    private static func writeBytes(_ bytes: [UInt8], to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
    }

    /// Read one frame's body (after its length): every byte must belong to
    /// a field, so a frame this code did not write is refused, not guessed at.
    init(body: inout ByteBuffer) throws(PeerFrameError) {
        guard let kindByte = body.readInteger(as: UInt8.self) else { throw .malformed(kind: 0) }
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        let malformed = PeerFrameError.malformed(kind: kindByte)
        func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws(PeerFrameError) -> T {
            guard let value = body.readInteger(as: T.self) else { throw malformed }
            return value
        }
        func bytes() throws(PeerFrameError) -> [UInt8] {
            let count: UInt32 = try integer()
            guard let value = body.readBytes(length: Int(count)) else { throw malformed }
            return value
        }
        switch kind {
        case .hello:
            let version: UInt16 = try integer()
            // Before version 4 a hello carried no engine: decoded as such, it
            // is refused for its version, with a message saying so.
            self = .hello(version: version, clusterID: try integer(), from: NodeID(try integer()), to: NodeID(try integer()), nonce: try bytes(),
                          engine: version >= 4 ? try integer() : EngineKind.raft.wireCode)
        case .challenge:
            self = .challenge(nonce: try bytes(), proof: try bytes())
        case .proof:
            self = .proof(try bytes())
        case .refused:
            guard let reason = PeerRefusal(rawValue: try integer()) else { throw malformed }
            self = .refused(reason, message: String(decoding: try bytes(), as: UTF8.self))
        case .messages:
            let count: UInt32 = try integer()
            // Each message takes at least its 4-byte length.
            guard Int(count) <= body.readableBytes / 4 else { throw malformed }
            var messages: [[UInt8]] = []
            messages.reserveCapacity(Int(count))
            for _ in 0..<count { messages.append(try bytes()) }
            self = .messages(messages)
        case .request:
            let id: UInt64 = try integer()
            guard let requestKind = PeerRequestKind(rawValue: try integer()) else { throw malformed }
            self = .request(id: id, kind: requestKind, payload: try bytes())
        case .response:
            self = .response(id: try integer(), code: try integer(), message: String(decoding: try bytes(), as: UTF8.self), payload: try bytes())
        case .snapshotStart:
            self = .snapshotStart(announce: try bytes(), size: try integer(), checksum: try integer())
        case .snapshotData:
            self = .snapshotData(try bytes())
        case .discover:
            self = .discover(version: try integer(), peerURL: String(decoding: try bytes(), as: UTF8.self))
        case .discovered:
            let clusterID: UInt64 = try integer()
            let memberID = NodeID(try integer())
            let count: UInt32 = try integer()
            // Each member takes at least its ID and its URL's length.
            guard Int(count) <= body.readableBytes / 12 else { throw malformed }
            var members: [DiscoveredMember] = []
            for _ in 0..<count {
                let id = NodeID(try integer())
                members.append(DiscoveredMember(id: id, peerURL: String(decoding: try bytes(), as: UTF8.self)))
            }
            self = .discovered(clusterID: clusterID, memberID: memberID, members: members)
        }
        guard body.readableBytes == 0 else { throw malformed }
    }
}

/// Splits the byte stream into frames, refusing one longer than the limit
/// before buffering it. A listener holds a connection's handshake frames
/// (the hello, then the proof) to `helloBytesMax`: nobody gets a large
/// buffer before proving who they are.
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = PeerFrame
    private var limit: Int
    /// Frames still held to the small limit.
    private var smallFramesLeft: Int

    init(handshakeBytesMax: Int = PeerFrame.bytesMax, handshakeFrames: Int = 0) {
        limit = handshakeFrames > 0 ? handshakeBytesMax : PeerFrame.bytesMax
        smallFramesLeft = handshakeFrames
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.frame(from: &buffer, limit: limit) else { return .needMoreData }
        smallFramesLeft -= 1
        if smallFramesLeft <= 0 { limit = PeerFrame.bytesMax }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    /// The next whole frame in `buffer` (consumed), nil until all of it
    /// arrived; a length past `limit` throws before anything is buffered.
    static func frame(from buffer: inout ByteBuffer, limit: Int) throws -> PeerFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= limit else { throw PeerFrameError.tooLarge(bytes: Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var body = buffer.readSlice(length: Int(length))!
        return try PeerFrame(body: &body)
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at the end of the stream is dropped with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

struct PeerFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = PeerFrame

    func encode(data: PeerFrame, out: inout ByteBuffer) throws {
        try data.write(to: &out)
    }
}

extension PeerFrame {
    /// A connection speaking frames, for both ends.
    typealias Connection = NIOAsyncChannel<PeerFrame, PeerFrame>

    /// The largest hello or proof a listener reads: a hello is 48 bytes
    /// after its length, a proof 37.
    static let helloBytesMax = 64
    /// A listener closes a connection that sent nothing for this long (the
    /// dialler pings every `PeerTransport.keepAliveSeconds`): a dialler that
    /// vanished without closing must not hold a socket, or a half-received
    /// snapshot, forever.
    static let listenerIdleSeconds: Int64 = 30

    /// Set up a dialled connection's pipeline for frames (on its event loop).
    static func wrapDialled(_ channel: Channel) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerFrameEncoder()))
            return try Connection(wrappingChannelSynchronously: channel)
        }
    }

    /// Set up an accepted connection's pipeline: a small first frame, and
    /// an idle limit; `tap`, if given, sees decoded frames before the
    /// connection's reader does.
    static func wrapAccepted(_ channel: Channel, tap: (any ChannelInboundHandler & Sendable)? = nil) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(listenerIdleSeconds)))
            try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder(handshakeBytesMax: helloBytesMax, handshakeFrames: 2)))
            try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerFrameEncoder()))
            if let tap { try channel.pipeline.syncOperations.addHandler(tap) }
            return try Connection(wrappingChannelSynchronously: channel)
        }
    }
}

/// Closes the connection when `IdleStateHandler` says nothing was read.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
