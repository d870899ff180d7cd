import Consensus

/// What the peer transport tells the metrics, as closures so that the
/// transport knows nothing of Prometheus.
struct PeerTraffic: Sendable {
    /// A ping's round trip to a peer (etcd_network_peer_round_trip_time_seconds).
    var roundTrip: @Sendable (Duration) -> Void = { _ in }
    /// Bytes of consensus messages written to a peer (etcd_network_peer_sent_bytes_total).
    var sent: @Sendable (_ to: NodeID, _ bytes: Int) -> Void = { _, _ in }
    /// Bytes of consensus messages read from a peer (etcd_network_peer_received_bytes_total).
    var received: @Sendable (_ from: NodeID, _ bytes: Int) -> Void = { _, _ in }

    /// Bytes a batch of messages takes in its frame.
    static func frameBytes(_ messages: [[UInt8]]) -> Int {
        messages.reduce(4 + 1 + 4) { $0 + 4 + $1.count }
    }
}
