import Consensus
import Foundation
import Logging
import NIOSSL

/// How a member joining a running cluster (`--initial-cluster-state
/// existing` on an empty data directory) learns the cluster's ID, as
/// etcd's joining member fetches the cluster from its peers' URLs: it asks
/// the members `--initial-cluster` names with a hello whose cluster ID is 0;
/// a member that knows the asker (it was added with `member add`) answers
/// with its own hello. The ID is kept in the data directory from then on.
enum ClusterDiscovery {
    /// How long a joining member keeps asking before it gives up (its
    /// `member add` may still be reaching the members it asks).
    static let timeoutSecondsDefault = 30.0
    static let retrySeconds = 0.5

    /// What a joiner puts in its hello's cluster field to ask.
    static let askingClusterID: UInt64 = 0

    static func clusterID(asking peers: [HostPort], selfID: NodeID, tls: NIOSSLContext, logger: Logger,
                          timeoutSeconds: Double = timeoutSecondsDefault) async throws -> UInt64 {
        precondition(!peers.isEmpty, "a joining member names at least one other member")
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var answers: [String] = []
        while ContinuousClock.now < deadline {
            answers = []
            for peer in peers {
                do {
                    let connection = try await PeerTransport.dial(peer, tls: tls)
                    let answer: PeerFrame? = try await connection.executeThenClose { inbound, outbound in
                        try await outbound.write(.hello(version: PeerFrame.protocolVersion, clusterID: askingClusterID, from: selfID))
                        var frames = inbound.makeAsyncIterator()
                        return try await frames.next()
                    }
                    switch answer {
                    case .hello(_, let clusterID, _)? where clusterID != askingClusterID:
                        logger.info("learned the cluster's ID from a member", metadata: ["cluster": "\(String(clusterID, radix: 16))", "from": "\(peer.url)"])
                        return clusterID
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
