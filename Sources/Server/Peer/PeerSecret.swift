import Consensus
import Crypto
import Foundation

/// The cluster's peer secret (`--peer-secret-file`): a key every member
/// holds and nobody else, with which each peer connection proves, both
/// ways, that it comes from a member of this cluster and speaks for the
/// member ID it claims (`PeerHandshake`).
///
/// The operator shares it, as etcd's operators share peer certificates: the
/// same file on every member, new ones included. It is never sent: a
/// connection carries only HMAC-SHA256 proofs over fresh nonces, so a
/// recorded handshake proves nothing on another connection. Peer TLS
/// (`--peer-cert-file`) can be used with it or instead of it.
struct PeerSecret: Sendable {
    private let key: SymmetricKey

    /// Shorter secrets are refused: 16 random bytes are beyond guessing.
    static let bytesMin = 16
    /// A secret is a key, not a document; a longer file is a wrong path.
    static let bytesMax = 4_096

    init(bytes: some ContiguousBytes) throws(ConfigError) {
        let count = bytes.withUnsafeBytes { $0.count }
        guard (Self.bytesMin...Self.bytesMax).contains(count) else {
            throw .invalid("a peer secret has \(Self.bytesMin) to \(Self.bytesMax) bytes, this one \(count) (make one with: head -c 32 /dev/urandom > FILE)")
        }
        key = SymmetricKey(data: bytes)
    }

    /// The secret in `path`, whole (a trailing newline is part of it: the
    /// same file on every member is what matters).
    static func load(path: String) throws(ConfigError) -> PeerSecret {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalid("--peer-secret-file \(path): cannot read it")
        }
        do {
            return try PeerSecret(bytes: data)
        } catch {
            throw .invalid("--peer-secret-file \(path): \(error)")
        }
    }

    /// The proof that `side` of the connection from `from` to `to` in
    /// cluster `clusterID`, with these nonces, holds the secret. Every field
    /// is bound, and the side too, so no proof serves for another
    /// connection, another member, or the other direction.
    func proof(_ side: PeerHandshake.Side, clusterID: UInt64, from: NodeID, to: NodeID,
               diallerNonce: [UInt8], listenerNonce: [UInt8]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("ballot peer handshake v1 \(side.rawValue)".utf8))
        for value in [clusterID, from.rawValue, to.rawValue, UInt64(diallerNonce.count), UInt64(listenerNonce.count)] {
            hmac.update(data: withUnsafeBytes(of: value.bigEndian) { Array($0) })
        }
        hmac.update(data: diallerNonce)
        hmac.update(data: listenerNonce)
        return Array(hmac.finalize())
    }

    /// Whether `proof` is the one `side` must give; compared in constant time.
    func verify(_ proof: [UInt8], _ side: PeerHandshake.Side, clusterID: UInt64, from: NodeID, to: NodeID,
                diallerNonce: [UInt8], listenerNonce: [UInt8]) -> Bool {
        let expected = self.proof(side, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce)
        guard proof.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(proof, expected) { difference |= a ^ b }
        return difference == 0
    }
}
