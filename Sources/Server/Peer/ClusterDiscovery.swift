import Consensus
import Foundation
import Logging
import NIOSSL

/// How a member joining a running cluster (`--initial-cluster-state
/// existing` on an empty data directory) learns the cluster's ID, its own
/// ID and the members, as etcd's joining member fetches the cluster from
/// its peers' URLs and finds itself by its peer URL: it sends the members
/// `--initial-cluster` names a `discover` frame with its advertised peer
/// URL; a member that knows that URL (it was added with `member add`,
/// which chose the ID) answers `discovered`. The data directory keeps both
/// IDs from then on.
enum ClusterDiscovery {
    /// How long a joining member keeps asking before it gives up (its
    /// `member add` may still be reaching the members it asks).
    static let timeoutSecondsDefault = 30.0
    static let retrySeconds = 0.5

    struct Discovery: Sendable {
        var clusterID: UInt64
        var memberID: NodeID
        var members: [PeerFrame.DiscoveredMember]
    }

    static func discover(asking peers: [HostPort], peerURL: String, tls: NIOSSLContext, rule: PeerCertificateRule?, logger: Logger,
                         timeoutSeconds: Double = timeoutSecondsDefault) async throws -> Discovery {
        precondition(!peers.isEmpty, "a joining member names at least one other member")
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var answers: [String] = []
        while ContinuousClock.now < deadline {
            answers = []
            for peer in peers {
                do {
                    let connection = try await PeerTransport.dial(peer, tls: tls, rule: rule, logger: logger)
                    let answer: PeerFrame? = try await connection.executeThenClose { inbound, outbound in
                        try await outbound.write(.discover(version: PeerFrame.protocolVersion, peerURL: peerURL))
                        var frames = inbound.makeAsyncIterator()
                        return try await frames.next()
                    }
                    switch answer {
                    case .discovered(let clusterID, let memberID, let members)?:
                        logger.info("learned the cluster and this member's ID from a member", metadata: [
                            "cluster": "\(String(clusterID, radix: 16))", "member-id": "\(String(memberID.rawValue, radix: 16))", "from": "\(peer.url)",
                        ])
                        return Discovery(clusterID: clusterID, memberID: memberID, members: members)
                    case .refused(_, let message)?:
                        answers.append("\(peer.url): \(message)")
                    default:
                        answers.append("\(peer.url): no answer")
                    }
                } catch {
                    answers.append("\(peer.url): \(error)")
                }
            }
            try await Task.sleep(for: .seconds(retrySeconds))
        }
        throw ConfigError.invalid(
            "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs (\(answers.joined(separator: "; ")))")
    }
}
