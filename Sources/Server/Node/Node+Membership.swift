import Consensus
import EtcdAPI
import Foundation
import StateMachine

/// Membership changes, which only the leader proposes: followers forward
/// them. A new member's attributes (name, URLs) are replicated first, so
/// every member can dial it once the configuration change commits; voter
/// changes go through joint consensus. A request returns once the change
/// is applied (the cluster is in the joint configuration, which the leader
/// leaves on its own), as etcd answers once its single-step change is
/// applied: a one-member cluster that adds a second member answers at once,
/// though it can leave the joint configuration only when that member starts.
extension Node {
    /// The minimum share of the leader's log a learner must hold to be promoted.
    static let promotableMatchPercent: UInt64 = 90

    func changeMembership(_ request: Ballotpb_MembershipForward) async throws -> Etcdserverpb_Member {
        var leader = try await awaitLeader()
        if leader == id, case .remove(let remove) = request.request, NodeID(remove.id) == id {
            // A leader removing itself could not finish the job (record the
            // removal, answer the member that forwarded it) once it is out:
            // it hands leadership to another voter, which does the removal.
            leader = try await handOverLeadership()
        }
        if leader != id { return try await transport.changeMembership(request, to: leader, timeout: requestTimeout).member }
        switch request.request {
        case .add(let add):
            return try await addMember(peerURLs: add.peerUrls, learner: add.isLearner)
        case .remove(let remove):
            try await removeMember(NodeID(remove.id))
            return Etcdserverpb_Member()
        case .update(let update):
            return try await updateMember(NodeID(update.id), peerURLs: update.peerUrls)
        case .promote(let promote):
            return try await promoteMember(NodeID(promote.id))
        case nil:
            throw EtcdError.invalid("etcdserver: empty membership request")
        }
    }

    private func addMember(peerURLs: [String], learner: Bool) async throws -> Etcdserverpb_Member {
        guard let first = peerURLs.first, let address = try? HostPort(url: first) else {
            throw EtcdError.invalid("etcdserver: member add needs a peer URL of the form http://host:port")
        }
        let newID = ServerConfig.addedMemberID(peerURLs: [address.url], unixSeconds: Int64(Date().timeIntervalSince1970))
        let current = status
        if let holder = members.member(withPeerURL: address.url), current.voters.union(current.learners).contains(NodeID(holder.id)) {
            throw EtcdError.peerURLExists
        }
        if current.voters.contains(newID) || current.learners.contains(newID) { throw EtcdError.memberExists }
        var member = Etcdserverpb_Member()
        member.id = newID.rawValue
        member.peerUrls = [address.url]
        member.isLearner = learner
        var record = Ballotpb_Command()
        record.memberAttributes = member
        _ = try await propose(record)
        try await applyConfigChange(ConfigChange(kind: .change, changes: [learner ? .addLearner(newID) : .addVoter(newID)]))
        return member
    }

    private func removeMember(_ target: NodeID) async throws {
        let current = status
        guard current.voters.contains(target) || current.learners.contains(target) else { throw EtcdError.memberNotFound }
        try await applyConfigChange(ConfigChange(kind: .change, changes: [.removeVoter(target)]))
        // Applying the record below makes every member refuse the removed
        // one's frames: on Multi-Paxos it still counts in quorums until the
        // change governs (the leader fills the slots before that at once).
        let deadline = Date().addingTimeInterval(requestTimeout)
        while status.governingMembers.contains(target) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        var record = Ballotpb_Command()
        record.memberRemoved = target.rawValue
        // Best effort: a leader never removes itself (it hands over first).
        _ = try? await propose(record)
    }

    private func updateMember(_ target: NodeID, peerURLs: [String]) async throws -> Etcdserverpb_Member {
        let current = status
        guard current.voters.contains(target) || current.learners.contains(target) else { throw EtcdError.memberNotFound }
        var member = members.member(target) ?? Etcdserverpb_Member()
        member.id = target.rawValue
        member.peerUrls = peerURLs
        var record = Ballotpb_Command()
        record.memberAttributes = member
        _ = try await propose(record)
        return member
    }

    private func promoteMember(_ target: NodeID) async throws -> Etcdserverpb_Member {
        let current = status
        guard current.voters.union(current.learners).contains(target) else { throw EtcdError.memberNotFound }
        guard current.learners.contains(target) else { throw EtcdError.memberNotLearner }
        let leaderMatch = current.matchIndex[id]?.rawValue ?? 0
        let learnerMatch = current.matchIndex[target]?.rawValue ?? 0
        guard learnerMatch * 100 >= leaderMatch * Self.promotableMatchPercent else { throw EtcdError.learnerNotReady }
        try await applyConfigChange(ConfigChange(kind: .change, changes: [.promoteLearner(target)]))
        var member = members.member(target) ?? Etcdserverpb_Member()
        member.isLearner = false
        var record = Ballotpb_Command()
        record.memberAttributes = member
        _ = try await propose(record)
        return member
    }

    /// Transfer leadership to the voter with the most of the log and wait
    /// until it leads; returns it.
    private func handOverLeadership() async throws -> NodeID {
        let current = status
        guard let successor = current.voters.subtracting([id]).max(by: { (current.matchIndex[$0] ?? .zero) < (current.matchIndex[$1] ?? .zero) }) else {
            throw EtcdError.invalid("etcdserver: re-configuration failed due to not enough started members")
        }
        // Nothing was proposed yet: a failure is a plain refusal, not an ambiguous one.
        guard try await moveLeadership(to: successor) else { throw EtcdError.noLeader }
        return successor
    }

    /// Ask the core to hand leadership to `target` and wait up to the
    /// request timeout for it to lead; whether it does.
    func moveLeadership(to target: NodeID) async throws -> Bool {
        transferLeadership(to: target)
        let deadline = Date().addingTimeInterval(requestTimeout)
        while status.leader != target {
            if Date() >= deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// Wait for an earlier change to leave its joint configuration, or to
    /// govern (the core takes one change at a time), propose, and wait
    /// until applied here.
    private func applyConfigChange(_ change: ConfigChange) async throws {
        let deadline = Date().addingTimeInterval(requestTimeout)
        while status.isJoint {
            // Nothing was proposed yet: a plain refusal, not an ambiguous one.
            if Date() >= deadline { throw EtcdError.unhealthy }
            try await Task.sleep(for: .milliseconds(10))
        }
        // A Multi-Paxos change governs a window of slots after its own and
        // the core refuses the next one until then (the leader fills that
        // window at once): wait for it as for a joint configuration. The
        // refusal proposed nothing, so trying again is safe.
        var index: LogIndex
        while true {
            do {
                index = try await proposeConfigChangeLocally(change)
                break
            } catch EtcdError.unhealthy where Date() < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        try await waitApplied(index)
    }
}
