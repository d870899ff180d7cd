import Consensus
import EtcdAPI
import Foundation
import Storage

/// Names and addresses of the members, by ID: the founders from
/// `--initial-cluster`, then whatever the replicated log recorded (members
/// added or updated later). MemberList reports it; the peer transport dials
/// from it. Shared by the node loop (which applies changes) and the
/// services (which read), so it is guarded by a lock.
final class MemberDirectory: @unchecked Sendable {
    private let lock = NSLock()
    private var members: [NodeID: Etcdserverpb_Member] = [:]
    /// Members removed while this process ran: their messages are refused
    /// with `PeerTransport.removedMessage`, which tells them to stop.
    private var removed: Set<NodeID> = []

    init(config: ServerConfig, recorded: [(id: UInt64, attributes: [UInt8])]) throws {
        for (name, peer) in config.initialCluster {
            let id = ServerConfig.memberID(peer: peer, token: config.clusterToken)
            var member = Etcdserverpb_Member()
            member.id = id.rawValue
            member.name = name
            member.peerUrls = [peer.url]
            if name == config.name { member.clientUrls = config.advertiseClientURLs }
            members[id] = member
        }
        for (id, bytes) in recorded {
            members[NodeID(id)] = try Etcdserverpb_Member(serializedBytes: bytes)
        }
        // This member's own client URLs come from its flags, always.
        members[config.memberID]?.clientUrls = config.advertiseClientURLs
        members[config.memberID]?.name = config.name
    }

    func member(_ id: NodeID) -> Etcdserverpb_Member? { lock.withLock { members[id] } }

    func set(_ member: Etcdserverpb_Member) {
        lock.withLock {
            members[NodeID(member.id)] = member
            removed.remove(NodeID(member.id))
        }
    }

    func remove(_ id: NodeID) {
        lock.withLock {
            members[id] = nil
            removed.insert(id)
        }
    }

    func wasRemoved(_ id: NodeID) -> Bool { lock.withLock { removed.contains(id) } }

    /// The member whose peer URLs include `url`, if any.
    func member(withPeerURL url: String) -> Etcdserverpb_Member? {
        lock.withLock { members.values.first { $0.peerUrls.contains(url) } }
    }

    var peerAddresses: [NodeID: HostPort] {
        lock.withLock { members.compactMapValues { $0.peerUrls.first.flatMap { try? HostPort(url: $0) } } }
    }
}
