import Consensus

/// Names and addresses of the members, by ID. Founders come from
/// `--initial-cluster`; this is what MemberList reports.
struct MemberDirectory: Sendable {
    struct Member: Sendable {
        var id: NodeID
        var name: String
        var peerURLs: [String]
        var clientURLs: [String]
    }

    var members: [NodeID: Member]

    init(config: ServerConfig) {
        var members: [NodeID: Member] = [:]
        for (name, peer) in config.initialCluster {
            let id = ServerConfig.memberID(peer: peer, token: config.clusterToken)
            members[id] = Member(id: id, name: name, peerURLs: [peer.url], clientURLs: name == config.name ? config.advertiseClientURLs : [])
        }
        self.members = members
    }

    var peerAddresses: [NodeID: HostPort] {
        members.compactMapValues { member in member.peerURLs.first.flatMap { try? HostPort(url: $0) } }
    }
}
