import Consensus
import NIOCore

/// Hands an accepted connection's consensus messages to the node on the
/// event loop that decoded them, instead of through the connection's
/// reader task: one thread hand-off per frame instead of two. Requests
/// `answer` takes (forwarded proposals, read indexes) are answered the same
/// way, by callback, their answers written from the event loop. Everything
/// else (the hello, other requests, snapshots) and any frame the tap
/// declines goes on to the reader, which checks the hello and serves
/// requests.
///
/// The tap starts delivering only after a hello that `accept` admits, with
/// the member it names; `deliver` declines (returns false) a frame the
/// reader must see instead, such as one from a member removed since.
final class PeerMessageTap: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PeerFrame
    typealias InboundOut = PeerFrame

    private let accept: @Sendable (PeerFrame) -> NodeID?
    private let deliver: @Sendable ([[UInt8]], NodeID) -> Bool
    private let counter: @Sendable (NodeID) -> @Sendable (Int) -> Void
    private let answer: @Sendable (_ id: UInt64, _ kind: PeerRequestKind, _ payload: [UInt8], _ from: NodeID,
                                   _ reply: @escaping @Sendable (PeerFrame) -> Void) -> Bool
    /// The event loop's alone, like every handler's state.
    private var sawFirst = false
    private var from: NodeID?
    /// Bytes received from `from`, resolved at the first bytes: etcd shows
    /// a peer's counter only once it moved. Kept in a stored property of
    /// its own type: a closure kept in generic storage (a `Mutex` of an
    /// optional) and written back through `inout` gains a conversion thunk
    /// on every access, a chain that grows with every frame.
    private var received: (@Sendable (Int) -> Void)?

    /// `deliver` returns false for a frame the reader must see instead;
    /// `counter` gives the byte counter for a member; `answer` takes a
    /// request (returning false to leave it to the reader) and calls its
    /// `reply` once, from any thread.
    init(accept: @escaping @Sendable (PeerFrame) -> NodeID?, deliver: @escaping @Sendable ([[UInt8]], NodeID) -> Bool,
         counter: @escaping @Sendable (NodeID) -> @Sendable (Int) -> Void,
         answer: @escaping @Sendable (UInt64, PeerRequestKind, [UInt8], NodeID, @escaping @Sendable (PeerFrame) -> Void) -> Bool) {
        self.accept = accept
        self.deliver = deliver
        self.counter = counter
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !sawFirst {
            sawFirst = true
            from = accept(frame)
        } else if let from, case .messages(let encoded) = frame, deliver(encoded, from) {
            if received == nil { received = counter(from) }
            received?(PeerTraffic.frameBytes(encoded))
            return
        } else if let from, case .request(let id, let kind, let payload) = frame {
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
