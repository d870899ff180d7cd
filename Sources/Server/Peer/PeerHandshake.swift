import Engines
import Consensus
import NIOCore

/// How a peer connection starts: the dialler's `hello` (its cluster, its
/// ID, the member it means to reach, a fresh nonce), the listener's
/// `challenge` (its own nonce and its proof), the dialler's `proof`.
/// With a peer secret (`PeerSecret`) each side proves it holds it over both
/// nonces, so neither a stranger nor a recording of another connection gets
/// past; the listener delivers nothing, and holds frames to a few bytes,
/// until the dialler's proof checked out, and the dialler sends nothing
/// before the listener's did. Without a secret the same frames go with
/// empty proofs, and the listener admits only IDs it knows as members.
enum PeerHandshake {
    enum Side: String, Sendable {
        case dialler, listener
    }

    /// Nonce length: 128 random bits never repeat.
    static let nonceBytes = 16
    /// A listener that has not answered a hello by then is given up on
    /// (the connection closed, the link redials): one that accepted the
    /// connection and hung must not hold the link forever.
    static let answerSecondsMax: Int64 = 5

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The hello a dialler opens with.
    static func hello(clusterID: UInt64, from: NodeID, to: NodeID, engine: EngineKind) -> PeerFrame {
        .hello(version: PeerFrame.protocolVersion, clusterID: clusterID, from: from, to: to, nonce: nonce(), engine: engine.wireCode)
    }

    /// The dialler's side: send `hello`, read the listener's
    /// challenge (or refusal), check its proof when this member has a
    /// secret, and answer with this member's proof. Throws `PeerRefused`
    /// for a refusal and `PeerUnproven` for a listener that did not prove
    /// itself; nothing else goes out on such a connection.
    static func dial(
        _ hello: PeerFrame, secret: PeerSecret?, on channel: any Channel,
        frames: inout NIOAsyncChannelInboundStream<PeerFrame>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<PeerFrame>
    ) async throws {
        guard case .hello(_, let clusterID, let from, let to, let diallerNonce, _) = hello else {
            preconditionFailure("a peer connection opens with a hello")
        }
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(answerSecondsMax)) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        try await outbound.write(hello)
        switch try await frames.next() {
        case .challenge(let listenerNonce, let listenerProof)?:
            var proof: [UInt8] = []
            if let secret {
                guard listenerNonce.count == nonceBytes, secret.verify(
                    listenerProof, .listener, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce)
                else { throw PeerUnproven(member: to) }
                proof = secret.proof(.dialler, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce)
            }
            try await outbound.write(.proof(proof))
        case .refused(let reason, let message)?:
            throw PeerRefused(reason: reason, message: message)
        case let other?:
            throw PeerProtocolError.unexpected(other)
        case nil:
            throw PeerProtocolError.connectionClosed
        }
    }
}

/// A listener that did not prove it holds this member's peer secret: not a
/// member of this cluster (or one with another secret), so nothing is sent.
struct PeerUnproven: Error, CustomStringConvertible {
    let member: NodeID
    var description: String {
        "the peer at member \(String(member.rawValue, radix: 16))'s address did not prove it holds the cluster's peer secret (check --peer-secret-file on both)"
    }
}
