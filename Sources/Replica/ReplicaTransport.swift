import Consensus

/// Where a replica's messages go: peer connections in the server (which
/// carry a snapshot's bytes with its announcement), `SimNetwork` in the
/// simulator. Sending never fails: a lost message is consensus's to retry.
public protocol ReplicaTransport {
    mutating func send(_ messages: [Message])
}
