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
    /// The event loop's alone, like every handler's state.
    private var sawFirst = false
    private var from: NodeID?

    init(accept: @escaping @Sendable (PeerFrame) -> NodeID?, deliver: @escaping @Sendable ([[UInt8]], NodeID) -> Bool) {
        self.accept = accept
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !sawFirst {
            sawFirst = true
            from = accept(frame)
        } else if let from, case .messages(let encoded) = frame, deliver(encoded, from) {
            return
        }
        context.fireChannelRead(data)
    }
}
