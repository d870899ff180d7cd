import Consensus
import NIOCore

/// Hands an accepted connection's consensus messages to the node on the
/// event loop that decoded them, instead of through the connection's
/// reader task: one thread hand-off per frame instead of two. Everything
/// else (the hello, requests, snapshots) and any frame the tap declines
/// goes on to the reader, which checks the hello and serves requests.
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
    /// `counter` gives the byte counter for a member.
    init(accept: @escaping @Sendable (PeerFrame) -> NodeID?, deliver: @escaping @Sendable ([[UInt8]], NodeID) -> Bool,
         counter: @escaping @Sendable (NodeID) -> @Sendable (Int) -> Void) {
        self.accept = accept
        self.deliver = deliver
        self.counter = counter
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
        }
        context.fireChannelRead(data)
    }
}
