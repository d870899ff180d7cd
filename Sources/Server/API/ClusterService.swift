import Consensus
import EtcdAPI
import GRPCCore

/// etcd's Cluster service: membership through joint consensus. Its
/// answers' headers carry no revision, as etcd's (`ClusterServer.header`).
struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let node: Node

    func memberList(request: Etcdserverpb_MemberListRequest, context: ServerContext) async throws -> Etcdserverpb_MemberListResponse {
        try await rpc {
            // Read-your-writes after a membership change made through another
            // member; without a leader, answer from what this member knows.
            try? await node.linearizableBarrier()
            var response = Etcdserverpb_MemberListResponse()
            response.header = node.membershipHeader()
            response.members = list()
            return response
        }
    }

    /// Every member in the configuration in force, with what the log says of it.
    private func list() -> [Etcdserverpb_Member] {
        let status = node.status
        return status.voters.union(status.learners).sorted().map { id in
            var member = node.members.member(id) ?? Etcdserverpb_Member()
            member.id = id.rawValue
            member.isLearner = status.learners.contains(id)
            return member
        }
    }

    private func change(_ build: (inout Ballotpb_MembershipForward) -> Void) async throws -> (Etcdserverpb_Member, Etcdserverpb_ResponseHeader) {
        var request = Ballotpb_MembershipForward()
        build(&request)
        let member = try await node.changeMembership(request)
        return (member, node.membershipHeader())
    }

    func memberAdd(request: Etcdserverpb_MemberAddRequest, context: ServerContext) async throws -> Etcdserverpb_MemberAddResponse {
        try await rpc {
            try node.checkAdmin(try await node.caller())
            let (member, header) = try await change { $0.add = request }
            var response = Etcdserverpb_MemberAddResponse()
            response.header = header
            response.member = member
            response.members = list()
            return response
        }
    }

    func memberRemove(request: Etcdserverpb_MemberRemoveRequest, context: ServerContext) async throws -> Etcdserverpb_MemberRemoveResponse {
        try await rpc {
            try node.checkAdmin(try await node.caller())
            let (_, header) = try await change { $0.remove = request }
            var response = Etcdserverpb_MemberRemoveResponse()
            response.header = header
            response.members = list()
            return response
        }
    }

    func memberUpdate(request: Etcdserverpb_MemberUpdateRequest, context: ServerContext) async throws -> Etcdserverpb_MemberUpdateResponse {
        try await rpc {
            try node.checkAdmin(try await node.caller())
            let (_, header) = try await change { $0.update = request }
            var response = Etcdserverpb_MemberUpdateResponse()
            response.header = header
            response.members = list()
            return response
        }
    }

    func memberPromote(request: Etcdserverpb_MemberPromoteRequest, context: ServerContext) async throws -> Etcdserverpb_MemberPromoteResponse {
        try await rpc {
            try node.checkAdmin(try await node.caller())
            let (_, header) = try await change { $0.promote = request }
            var response = Etcdserverpb_MemberPromoteResponse()
            response.header = header
            response.members = list()
            return response
        }
    }
}

extension Node {
    /// etcd's Cluster service header: cluster, member and term, no revision.
    func membershipHeader() -> Etcdserverpb_ResponseHeader {
        header(revision: 0)
    }
}
