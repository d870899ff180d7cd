import Consensus
import EtcdAPI
import Logging
import StateMachine

/// What applying an entry does in the server beyond the store: lease
/// timers start and stop, the member directory learns names and URLs, and
/// the peer transport dials or drops the member. Runs on the apply thread
/// (and on the node loop after a snapshot install), in log order.
struct ServerApplyEffects: ApplyEffects {
    let lessor: Lessor
    let members: MemberDirectory
    let transport: PeerTransport
    /// nil with JWT tokens, which no member keeps.
    let tokens: SimpleTokens?
    let logger: Logger

    func authTokens(_ effects: [AuthStore.TokenEffect]) { tokens?.apply(effects) }

    func leaseGranted(_ id: Int64, ttl: Int64) { lessor.granted(id, ttl: ttl) }

    func leaseRevoked(_ id: Int64) { lessor.revoked(id) }

    /// Record a member's name and URLs and dial its peer URL (a member the
    /// log added or updated, or one a snapshot brought).
    func memberLearned(_ member: Etcdserverpb_Member) {
        members.set(member)
        guard let url = member.peerUrls.first else { return }
        do {
            transport.addPeer(NodeID(member.id), address: try HostPort(url: url))
        } catch {
            logger.error("cannot dial a member: its peer URL does not parse", metadata: ["member": "\(member.id)", "url": "\(url)", "error": "\(error)"])
        }
    }

    func memberRemoved(_ id: NodeID) {
        members.remove(id)
        transport.removePeer(id)
    }
}
