import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import StateMachine
import Storage

/// etcd's Lease service. Grant and revoke are replicated writes; keep-alive
/// and time-to-live ask the leader (followers forward), whose clock alone
/// decides expiry.
struct LeaseService: Etcdserverpb_Lease.SimpleServiceProtocol {
    let node: Node

    func leaseGrant(request: Etcdserverpb_LeaseGrantRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseGrantResponse {
        try await rpc {
            guard request.ttl <= Lessor.maximumTTL else { throw EtcdError.leaseTTLTooLarge }
            var grant = request
            grant.ttl = max(request.ttl, node.lessor.minimumTTL)
            if grant.id == 0 { grant.id = Self.newLeaseID(member: node.id) }
            guard grant.id > 0 else { throw EtcdError.invalid("etcdserver: lease ID must be positive") }
            // etcd grants to anyone, but judges a token that comes along.
            _ = try await node.caller()
            var command = Ballotpb_Command()
            command.leaseGrant = grant
            var response = try await node.propose(command).leaseGrant
            response.header = node.header(revision: response.header.revision)
            return response
        }
    }

    func leaseRevoke(request: Etcdserverpb_LeaseRevokeRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseRevokeResponse {
        try await rpc {
            var command = Ballotpb_Command()
            // Every member checks the caller may write each key the lease holds.
            if let header = try await node.authHeader() { command.authHeader = header }
            command.leaseRevoke = request
            var response = try await node.propose(command).leaseRevoke
            response.header = node.header(revision: response.header.revision)
            return response
        }
    }

    func leaseKeepAlive(request: RPCAsyncSequence<Etcdserverpb_LeaseKeepAliveRequest, any Error>,
                        response: RPCWriter<Etcdserverpb_LeaseKeepAliveResponse>, context: ServerContext) async throws {
        for try await keepAlive in request {
            let reply = try await rpc { try await node.keepAlive(keepAlive) }
            try await response.write(reply)
        }
    }

    func leaseTimeToLive(request: Etcdserverpb_LeaseTimeToLiveRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseTimeToLiveResponse {
        try await rpc {
            // The lease's keys only to a caller who may read each (etcd
            // 3.4.26's fix for CVE-2023-32082); without keys, nothing is
            // judged, not even a token, as in etcd 3.4.
            let response = try await node.timeToLive(request)
            if request.keys {
                let caller = try await node.caller()
                for key in response.keys { try node.checkRead(caller, key: [UInt8](key), rangeEnd: []) }
            }
            return response
        }
    }

    func leaseLeases(request: Etcdserverpb_LeaseLeasesRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseLeasesResponse {
        try await rpc {
            try await node.linearizableBarrier()
            var response = Etcdserverpb_LeaseLeasesResponse()
            response.header = node.header(revision: try node.read { $0.currentRevision })
            response.leases = node.lessor.ids().map { id in
                var status = Etcdserverpb_LeaseStatus()
                status.id = id
                return status
            }
            return response
        }
    }

    /// A fresh positive ID: the member's low bits, the clock in milliseconds
    /// and a random tail, so two members granting at once do not collide
    /// (and if they did, the second grant fails with "lease already exists").
    static func newLeaseID(member: NodeID) -> Int64 {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000) & 0xFF_FFFF_FFFF
        let raw = (member.rawValue & 0xFF) << 52 | millis << 12 | UInt64.random(in: 0..<4096)
        return Int64(bitPattern: raw & 0x7FFF_FFFF_FFFF_FFFF) | 1
    }
}

extension Node {
    /// Renew a lease on the leader (here, or forwarded to it).
    func keepAlive(_ request: Etcdserverpb_LeaseKeepAliveRequest) async throws -> Etcdserverpb_LeaseKeepAliveResponse {
        let leader = try await awaitLeader()
        if leader != id {
            var forward = Ballotpb_LeaseForward()
            forward.keepAlive = request
            return try await transport.lease(forward, to: leader, timeout: requestTimeout).keepAlive
        }
        var response = Etcdserverpb_LeaseKeepAliveResponse()
        response.id = request.id
        // etcd answers an unknown or expired lease with TTL 0.
        response.ttl = lessor.renew(request.id) ?? 0
        response.header = header(revision: try read { $0.currentRevision })
        return response
    }

    func timeToLive(_ request: Etcdserverpb_LeaseTimeToLiveRequest) async throws -> Etcdserverpb_LeaseTimeToLiveResponse {
        let leader = try await awaitLeader()
        if leader != id {
            var forward = Ballotpb_LeaseForward()
            forward.timeToLive = request
            return try await transport.lease(forward, to: leader, timeout: requestTimeout).timeToLive
        }
        var response = Etcdserverpb_LeaseTimeToLiveResponse()
        response.id = request.id
        response.header = header(revision: try read { $0.currentRevision })
        guard let (seconds, granted) = lessor.remaining(request.id) else {
            response.ttl = -1  // etcd's answer for a lease that does not exist
            return response
        }
        response.ttl = seconds
        response.grantedTtl = granted
        if request.keys {
            response.keys = try read { try $0.keys(attachedTo: request.id) }.map { Data($0) }
        }
        return response
    }
}
