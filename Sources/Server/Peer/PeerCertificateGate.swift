import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Holds a peer connection shut until its TLS handshake is done and the
/// other side's certificate meets the member's `PeerCertificateRule`; sits
/// right after the TLS handler, so nothing the other side sent reaches the
/// frame decoder before the check.
///
/// A side that refuses logs etcd's "client certificate authentication
/// failed", tells the other side with a `refused` frame carrying Go's words
/// for the TLS alert etcd's side would send ("remote error: tls: bad
/// certificate"), and closes. Both sides may refuse at once (each has its
/// rule), so a refusing side still reads, for `refusalReadSeconds`, whether
/// the other refused it too, and logs that: with etcd, the side whose
/// handshake was aborted logs the alert. A side that admitted the other
/// hears of a refusal as any refused frame (`PeerLink`, `PeerListener`).
/// A refusing dialler fails its connection with `PeerCertificateRefused`.
final class PeerCertificateGate: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side: Sendable { case listener, dialler }

    private enum State { case handshaking, open, refused }

    private let rule: PeerCertificateRule
    private let side: Side
    private let logger: Logger
    /// The event loop's alone, like every handler's state.
    private var state = State.handshaking
    /// Refused: what the other side sent, read for its own refusal.
    private var unread: ByteBuffer?
    /// Writes made before the check (a dialler's hello and first
    /// messages): held here, not handed to TLS, which would send them as
    /// soon as its handshake is done, before this check.
    private var held: [(data: NIOAny, promise: EventLoopPromise<Void>?)] = []
    private var flushHeld = false

    /// How long a refusing side reads whether the other refused it too.
    static let refusalReadSeconds: Int64 = 1
    /// The most it reads meanwhile: a refused frame is far smaller.
    static let refusalReadBytesMax = 4096

    init(rule: PeerCertificateRule, side: Side, logger: Logger) {
        self.rule = rule
        self.side = side
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent, state == .handshaking {
            let certificate = (try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self))?.peerCertificate
            if rule.admits(certificate) {
                state = .open
                let writes = held
                held = []
                for write in writes { context.write(write.data, promise: write.promise) }
                if flushHeld { context.flush() }
            } else {
                refuse(context: context)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .open:
            context.fireChannelRead(data)
        case .handshaking:
            // TLS hands over no data before its handshake is done: a bug.
            assertionFailure("peer data before the TLS handshake completed")
            refuse(context: context)
        case .refused:
            var bytes = unwrapInboundIn(data)
            unread = unread ?? context.channel.allocator.buffer(capacity: 256)
            unread!.writeBuffer(&bytes)
            readOtherSidesRefusal(context: context)
        }
    }

    /// Nothing leaves for a peer whose certificate was refused; the hello a
    /// dialler writes at once waits here for the check.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .open:
            context.write(data, promise: promise)
        case .handshaking:
            guard held.count < Self.heldWritesMax else {
                promise?.fail(PeerCertificateRefused())
                return
            }
            held.append((data, promise))
        case .refused:
            promise?.fail(PeerCertificateRefused())
        }
    }

    func flush(context: ChannelHandlerContext) {
        if state == .handshaking { flushHeld = true } else { context.flush() }
    }

    /// Writes held before the check, at most: a dialler writes its hello
    /// and one flush of queued messages (`PeerLink.batches`).
    static let heldWritesMax = 1024

    private func refuse(context: ChannelHandlerContext) {
        state = .refused
        let writes = held
        held = []
        for write in writes { write.promise?.fail(PeerCertificateRefused()) }
        logger.warning("refused a peer's certificate", metadata: [
            "remote": "\(remote(context))", "side": "\(side)", "rule": "\(rule)", "error": "\(PeerCertificateRule.refusalMessage)",
        ])
        if side == .dialler { context.fireErrorCaught(PeerCertificateRefused()) }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        let frame = PeerFrame.refused(.badCertificate, message: PeerCertificateRule.refusedByPeerMessage)
        if (try? PeerFrameEncoder().encode(data: frame, out: &buffer)) != nil {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(Self.refusalReadSeconds)) { channel.close(promise: nil) }
    }

    /// The other side's refused frame, if it sent one: logged, then close.
    private func readOtherSidesRefusal(context: ChannelHandlerContext) {
        guard var bytes = unread else { return }
        let first: PeerFrame?
        do {
            first = try PeerFrameDecoder.frame(from: &bytes, limit: Self.refusalReadBytesMax)
            if first == nil && bytes.readableBytes <= Self.refusalReadBytesMax { return }  // more to come
        } catch {
            first = nil  // too large or malformed: not a refusal
        }
        if case .refused(_, let message)? = first {
            logger.warning("a peer refused this member's certificate", metadata: [
                "remote": "\(remote(context))", "side": "\(side)", "error": "\(message)",
            ])
        }
        unread = nil
        context.close(promise: nil)
    }

    private func remote(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "?"
    }
}

/// This member refused the certificate its peer presented (`PeerCertificateRule`).
struct PeerCertificateRefused: Error, CustomStringConvertible {
    var description: String { PeerCertificateRule.refusalMessage }
}
