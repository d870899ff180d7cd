import EtcdAPI
import Foundation
import GRPCCore

/// etcd's Election service (`v3electionpb`), as etcd's server runs it: the
/// `concurrency.Election` recipe on the member's own KV, Lease and Watch.
/// A candidate's key is `<name>/<lease in hex>`; the leader is the key
/// under the name created first, and its create revision (`LeaderKey.rev`)
/// is the term's fencing token.
struct ElectionService: V3electionpb_Election.SimpleServiceProtocol {
    let client: LocalClient

    /// etcd's errors here are plain Go errors, which gRPC sends as Unknown.
    static let missingLeaderKey = RPCError(code: .unknown, message: "\"leader\" field must be provided")
    static let notLeader = RPCError(code: .unknown, message: "election: not leader")
    static let noLeader = RPCError(code: .unknown, message: "election: no leader")

    static func prefix(_ name: Data) -> Data { name + Data("/".utf8) }

    func campaign(request: V3electionpb_CampaignRequest, context: ServerContext) async throws -> V3electionpb_CampaignResponse {
        try await LocalClient.asEtcdsHandlers {
            let lease = try await client.sessionLease(request.lease)
            let prefix = Self.prefix(request.name)
            let key = LocalClient.sessionKey(prefix: prefix, lease: lease)
            var txn = Etcdserverpb_TxnRequest()
            txn.compare = [Self.created(key, at: 0)]
            var put = Etcdserverpb_RequestOp()
            put.requestPut.key = key
            put.requestPut.value = request.value
            put.requestPut.lease = lease
            var get = Etcdserverpb_RequestOp()
            get.requestRange.key = key
            txn.success = [put]
            txn.failure = [get]
            let answer = try await client.kv.txn(txn)
            var leader = V3electionpb_LeaderKey()
            leader.name = request.name
            leader.key = key
            leader.rev = answer.header.revision
            leader.lease = lease
            if !answer.succeeded, let existing = answer.responses[0].responseRange.kvs.first {
                leader.rev = existing.createRevision
                if existing.value != request.value {
                    do {
                        _ = try await proclaim(leader, request.value)
                    } catch {
                        _ = try? await resign(leader)
                        throw error
                    }
                }
            }
            do {
                _ = try await untilRPCCancelled(context) { [client, leader] in
                    try await client.waitDeletes(prefix, maxCreateRevision: leader.rev - 1)
                }
            } catch {
                // A candidate that gives up withdraws, as etcd's does.
                if context.cancellation.isCancelled || error is CancellationError {
                    await LocalClient.despiteCancellation { [leader] in _ = try await resign(leader) }
                }
                throw error
            }
            var response = V3electionpb_CampaignResponse()
            response.header = answer.header
            response.leader = leader
            return response
        }
    }

    func proclaim(request: V3electionpb_ProclaimRequest, context: ServerContext) async throws -> V3electionpb_ProclaimResponse {
        try await LocalClient.asEtcdsHandlers {
            guard request.hasLeader else { throw Self.missingLeaderKey }
            var response = V3electionpb_ProclaimResponse()
            response.header = try await proclaim(request.leader, request.value)
            return response
        }
    }

    func resign(request: V3electionpb_ResignRequest, context: ServerContext) async throws -> V3electionpb_ResignResponse {
        try await LocalClient.asEtcdsHandlers {
            guard request.hasLeader else { throw Self.missingLeaderKey }
            var response = V3electionpb_ResignResponse()
            response.header = try await resign(request.leader)
            return response
        }
    }

    func leader(request: V3electionpb_LeaderRequest, context: ServerContext) async throws -> V3electionpb_LeaderResponse {
        try await LocalClient.asEtcdsHandlers {
            let found = try await client.kv.range(client.edge(Self.prefix(request.name), first: true))
            guard let kv = found.kvs.first else { throw Self.noLeader }
            var response = V3electionpb_LeaderResponse()
            response.header = found.header
            response.kv = kv
            return response
        }
    }

    /// Every leader in turn, and each new value a leader proclaims, until
    /// the client leaves (`concurrency.Election.Observe`).
    func observe(request: V3electionpb_LeaderRequest, response: RPCWriter<V3electionpb_LeaderResponse>, context: ServerContext) async throws {
        let prefix = Self.prefix(request.name)
        // etcd's observer ends the stream, without an error, when any of
        // its reads or watches fails.
        do {
            try await untilRPCCancelled(context) { try await observeLeaders(prefix, response) }
        } catch {
            return
        }
    }

    private func observeLeaders(_ prefix: Data, _ response: RPCWriter<V3electionpb_LeaderResponse>) async throws {
        while !Task.isCancelled {
            let found = try await client.kv.range(client.edge(prefix, first: true))
            var current = V3electionpb_LeaderResponse()
            if let kv = found.kvs.first {
                current.header = found.header
                current.kv = kv
            } else {
                // No leader yet: the first key put under the prefix is one.
                current = try await firstPut(under: prefix, from: found.header.revision)
            }
            try await response.write(current)
            try await followUntilDeleted(current, response)
        }
    }

    private func firstPut(under prefix: Data, from revision: Int64) async throws -> V3electionpb_LeaderResponse {
        var create = Etcdserverpb_WatchRequest()
        create.createRequest.key = prefix
        create.createRequest.rangeEnd = KeyPrefix.rangeEnd(prefix)
        create.createRequest.startRevision = revision
        return try await client.watch.watch(request: LocalClient.holdingOpen(create)) { stream in
            for try await message in stream.messages {
                if message.canceled { throw LocalClient.watchEnded(message) }
                if let put = message.events.first(where: { $0.type == .put }) {
                    var leader = V3electionpb_LeaderResponse()
                    leader.header = message.header
                    leader.header.revision = put.kv.modRevision
                    leader.kv = put.kv
                    return leader
                }
            }
            throw CancellationError()
        }
    }

    private func followUntilDeleted(_ leader: V3electionpb_LeaderResponse, _ response: RPCWriter<V3electionpb_LeaderResponse>) async throws {
        var create = Etcdserverpb_WatchRequest()
        create.createRequest.key = leader.kv.key
        create.createRequest.startRevision = leader.header.revision + 1
        try await client.watch.watch(request: LocalClient.holdingOpen(create)) { stream in
            for try await message in stream.messages {
                if message.canceled { throw LocalClient.watchEnded(message) }
                for event in message.events {
                    if event.type == .delete { return }
                    var update = V3electionpb_LeaderResponse()
                    update.header = message.header
                    update.kv = event.kv
                    try await response.write(update)
                }
            }
            throw CancellationError()
        }
    }

    /// Put a new value on the leader's key while it is still that leader's.
    private func proclaim(_ leader: V3electionpb_LeaderKey, _ value: Data) async throws -> Etcdserverpb_ResponseHeader {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [Self.created(leader.key, at: leader.rev)]
        var put = Etcdserverpb_RequestOp()
        put.requestPut.key = leader.key
        put.requestPut.value = value
        put.requestPut.lease = leader.lease
        txn.success = [put]
        let answer = try await client.kv.txn(txn)
        guard answer.succeeded else { throw Self.notLeader }
        return answer.header
    }

    /// Delete the leader's key while it is still that leader's.
    private func resign(_ leader: V3electionpb_LeaderKey) async throws -> Etcdserverpb_ResponseHeader {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [Self.created(leader.key, at: leader.rev)]
        var delete = Etcdserverpb_RequestOp()
        delete.requestDeleteRange.key = leader.key
        txn.success = [delete]
        return try await client.kv.txn(txn).header
    }

    static func created(_ key: Data, at revision: Int64) -> Etcdserverpb_Compare {
        var compare = Etcdserverpb_Compare()
        compare.key = key
        compare.target = .create
        compare.result = .equal
        compare.createRevision = revision
        return compare
    }
}
