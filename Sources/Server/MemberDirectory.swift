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

    /// The founders as the flags derive them, or, for a member joining
    /// now, the members it `discovered`; then what the log recorded, which
    /// wins. A flag-derived entry whose peer URL the log gives another ID
    /// is dropped: that member was added later, under an ID of the
    /// cluster's choosing.
    init(config: ServerConfig, recorded: [(id: UInt64, attributes: [UInt8])], discovered: [PeerFrame.DiscoveredMember]? = nil) throws {
        if let discovered {
            for found in discovered {
                var member = Etcdserverpb_Member()
                member.id = found.id.rawValue
                member.peerUrls = [found.peerURL]
                members[found.id] = member
            }
        } else {
            for (name, peer) in config.initialCluster {
                let id = ServerConfig.memberID(peer: peer, token: config.clusterToken)
                var member = Etcdserverpb_Member()
                member.id = id.rawValue
                member.name = name
                member.peerUrls = [peer.url]
                members[id] = member
            }
        }
        var fromLog: Set<NodeID> = []
        for (id, bytes) in recorded {
            members[NodeID(id)] = try Etcdserverpb_Member(serializedBytes: bytes)
            fromLog.insert(NodeID(id))
        }
        let urlsInLog = Dictionary(fromLog.compactMap { id in members[id]?.peerUrls.first.map { ($0, id) } }, uniquingKeysWith: { a, _ in a })
        for (id, member) in members where !fromLog.contains(id) {
            if let url = member.peerUrls.first, let other = urlsInLog[url], other != id { members[id] = nil }
        }
        // This member's own name and client URLs come from its flags, always.
        var own = members[config.memberID] ?? Etcdserverpb_Member()
        own.id = config.memberID.rawValue
        if own.peerUrls.isEmpty { own.peerUrls = [config.advertisedPeer.url] }
        own.clientUrls = config.advertiseClientURLs
        own.name = config.name
        members[config.memberID] = own
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
