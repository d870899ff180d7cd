import Consensus
import NIOCore
import NIOSSL

/// What a listener makes of a connection's first frame, when it is a hello.
enum PeerAdmission: Sendable {
    /// Refuse with this frame, then close (the listener logged why).
    case refuse(PeerFrame)
    /// Send this challenge; `check` then judges the dialler's proof: nil
    /// admits it as member `from`, else the refusal to send before closing.
    case challenge(PeerFrame, from: NodeID, check: @Sendable ([UInt8]) -> PeerFrame?)
}

/// Runs an accepted connection's handshake (`PeerHandshake`), then hands
/// its consensus messages to the node on the event loop that decoded them,
/// instead of through the connection's reader task: one thread hand-off
/// per frame instead of two. Requests `answer` takes (forwarded proposals)
/// are answered the same way, by callback, their answers written from the
/// event loop. Everything else (other requests, snapshots) and any frame
/// the tap declines goes on to the reader, which serves requests; so does
/// a first frame that is not a hello (a joiner's `discover`, or garbage the
/// reader refuses).
///
/// Nothing reaches the node or the reader from a dialler before its proof
/// checked out: the reader sees the hello only then. `deliver` declines
/// (returns false) a frame the reader must see instead, such as one from a
/// member removed since.
final class PeerMessageTap: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PeerFrame
    typealias InboundOut = PeerFrame

    private let admit: @Sendable (_ hello: PeerFrame, _ remote: String, _ certificate: NIOSSLCertificate?) -> PeerAdmission?
    private let deliver: @Sendable ([[UInt8]], NodeID) -> Bool
    private let counter: @Sendable (NodeID) -> @Sendable (Int) -> Void
    private let answer: @Sendable (_ id: UInt64, _ kind: PeerRequestKind, _ payload: [UInt8], _ from: NodeID,
                                   _ reply: @escaping @Sendable (PeerFrame) -> Void) -> Bool

    private enum State {
        case start
        case awaitingProof(hello: PeerFrame, from: NodeID, check: @Sendable ([UInt8]) -> PeerFrame?)
        case proven(NodeID)
        /// The first frame was not a hello: the reader deals with the connection.
        case passThrough
        case refused
    }

    /// The event loop's alone, like every handler's state.
    private var state = State.start
    /// Bytes received from the proven member, resolved at the first bytes:
    /// etcd shows a peer's counter only once it moved. Kept in a stored
    /// property of its own type: a closure kept in generic storage (a
    /// `Mutex` of an optional) and written back through `inout` gains a
    /// conversion thunk on every access, a chain that grows with every frame.
    private var received: (@Sendable (Int) -> Void)?

    /// `admit` judges a first frame (nil: not a hello, the reader's), with
    /// the dialler's address and TLS certificate;
    /// `deliver` returns false for a frame the reader must see instead;
    /// `counter` gives the byte counter for a member; `answer` takes a
    /// request (returning false to leave it to the reader) and calls its
    /// `reply` once, from any thread.
    init(admit: @escaping @Sendable (PeerFrame, String, NIOSSLCertificate?) -> PeerAdmission?, deliver: @escaping @Sendable ([[UInt8]], NodeID) -> Bool,
         counter: @escaping @Sendable (NodeID) -> @Sendable (Int) -> Void,
         answer: @escaping @Sendable (UInt64, PeerRequestKind, [UInt8], NodeID, @escaping @Sendable (PeerFrame) -> Void) -> Bool) {
        self.admit = admit
        self.deliver = deliver
        self.counter = counter
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .start:
            // Under TLS, the certificate the dialler's handshake presented.
            let certificate = (try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self))?.peerCertificate
            switch admit(frame, context.channel.remoteAddress.map { "\($0)" } ?? "?", certificate) {
            case nil:
                state = .passThrough
                context.fireChannelRead(data)
            case .refuse(let refusal)?:
                refuse(context, refusal)
            case .challenge(let challenge, let from, let check)?:
                state = .awaitingProof(hello: frame, from: from, check: check)
                context.writeAndFlush(NIOAny(challenge), promise: nil)
            }
        case .awaitingProof(let hello, let from, let check):
            guard case .proof(let proof) = frame else {
                return refuse(context, .refused(.unproven, message: "ballot: a peer connection proves itself right after its hello"))
            }
            if let refusal = check(proof) { return refuse(context, refusal) }
            state = .proven(from)
            context.fireChannelRead(wrapInboundOut(hello))
        case .refused:
            break
        case .passThrough:
            context.fireChannelRead(data)
        case .proven(let from):
            if case .messages(let encoded) = frame, deliver(encoded, from) {
                if received == nil { received = counter(from) }
                received?(PeerTraffic.frameBytes(encoded))
                return
            }
            if case .request(let id, let kind, let payload) = frame {
                let loop = context.eventLoop
                let bound = NIOLoopBound(context, eventLoop: loop)
                let reply: @Sendable (PeerFrame) -> Void = { frame in
                    // Written from this handler's place, toward the encoder.
                    loop.execute { bound.value.writeAndFlush(NIOAny(frame), promise: nil) }
                }
                if answer(id, kind, payload, from, reply) { return }
            }
            context.fireChannelRead(data)
        }
    }

    /// Send the refusal, then close; nothing more is read from the connection.
    private func refuse(_ context: ChannelHandlerContext, _ refusal: PeerFrame) {
        state = .refused
        let channel = context.channel
        context.writeAndFlush(NIOAny(refusal)).whenComplete { _ in channel.close(promise: nil) }
    }
}
