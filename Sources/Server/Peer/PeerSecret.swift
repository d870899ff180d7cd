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
        let transcript = Self.transcript(side, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce)
        return Array(HMAC<SHA256>.authenticationCode(for: transcript, using: key))
    }

    /// Whether `proof` is the one `side` must give (swift-crypto compares in constant time).
    func verify(_ proof: [UInt8], _ side: PeerHandshake.Side, clusterID: UInt64, from: NodeID, to: NodeID,
                diallerNonce: [UInt8], listenerNonce: [UInt8]) -> Bool {
        let transcript = Self.transcript(side, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce)
        return HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: transcript, using: key)
    }

    /// What a proof covers: the protocol and side, the cluster, both IDs
    /// and both nonces (each with its length, so no two differ only in
    /// where one nonce ends).
    private static func transcript(_ side: PeerHandshake.Side, clusterID: UInt64, from: NodeID, to: NodeID,
                                   diallerNonce: [UInt8], listenerNonce: [UInt8]) -> [UInt8] {
        var bytes = Array("ballot peer handshake v1 \(side.rawValue)".utf8)
        for value in [clusterID, from.rawValue, to.rawValue, UInt64(diallerNonce.count), UInt64(listenerNonce.count)] {
            withUnsafeBytes(of: value.bigEndian) { bytes += $0 }
        }
        return bytes + diallerNonce + listenerNonce
    }
}
