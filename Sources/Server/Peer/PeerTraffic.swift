import Consensus

/// What the peer transport tells the metrics, as closures so that the
/// transport knows nothing of Prometheus.
struct PeerTraffic: Sendable {
    /// A ping's round trip to a peer (etcd_network_peer_round_trip_time_seconds).
    var roundTrip: @Sendable (Duration) -> Void = { _ in }
    /// Where to count bytes of consensus messages written to a peer
    /// (etcd_network_peer_sent_bytes_total): asked once per connection, at
    /// its first bytes (a counter shows from then on), so that sending a
    /// frame costs no lookup.
    var sentTo: @Sendable (NodeID) -> @Sendable (_ bytes: Int) -> Void = { _ in { _ in } }
    /// The same for bytes read from a peer (etcd_network_peer_received_bytes_total).
    var receivedFrom: @Sendable (NodeID) -> @Sendable (_ bytes: Int) -> Void = { _ in { _ in } }
    /// A dialler refused, by why (ballot_peer_connections_refused_total).
    var refused: @Sendable (PeerRefusal) -> Void = { _ in }

    /// Bytes a batch of messages takes in its frame.
    static func frameBytes(_ messages: [[UInt8]]) -> Int {
        messages.reduce(4 + 1 + 4) { $0 + 4 + $1.count }
    }
}
