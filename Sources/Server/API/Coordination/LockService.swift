import EtcdAPI
import Foundation
import GRPCCore

/// etcd's Lock service (`v3lockpb`), as etcd's server runs it: the
/// `concurrency.Mutex` recipe on the member's own KV, Lease and Watch.
/// The holder's key is `<name>/<lease in hex>`; the lock goes to the key
/// under the name created first, and its create revision is a fencing
/// token (it only grows per name).
struct LockService: V3lockpb_Lock.SimpleServiceProtocol {
    let client: LocalClient

    func lock(request: V3lockpb_LockRequest, context: ServerContext) async throws -> V3lockpb_LockResponse {
        try await LocalClient.asEtcdsHandlers {
            let lease = try await client.sessionLease(request.lease)
            let prefix = request.name + Data("/".utf8)
            let myKey = LocalClient.sessionKey(prefix: prefix, lease: lease)
            var txn = Etcdserverpb_TxnRequest()
            var absent = Etcdserverpb_Compare()
            absent.key = myKey
            absent.target = .create
            absent.result = .equal
            absent.createRevision = 0
            txn.compare = [absent]
            var put = Etcdserverpb_RequestOp()
            put.requestPut.key = myKey
            put.requestPut.lease = lease
            var get = Etcdserverpb_RequestOp()
            get.requestRange.key = myKey
            var owner = Etcdserverpb_RequestOp()
            owner.requestRange = client.edge(prefix, first: true)
            txn.success = [put, owner]
            txn.failure = [get, owner]
            let answer = try await client.kv.txn(txn)
            let myRevision = answer.succeeded
                ? answer.header.revision
                : answer.responses[0].responseRange.kvs.first?.createRevision ?? answer.header.revision
            var response = V3lockpb_LockResponse()
            response.key = myKey
            let holder = answer.responses[1].responseRange.kvs.first
            if holder == nil || holder?.createRevision == myRevision {
                response.header = answer.header
                return response
            }
            do {
                response.header = try await untilRPCCancelled(context) { [client] in
                    try await client.waitDeletes(prefix, maxCreateRevision: myRevision - 1)
                }
            } catch {
                // A waiter that gives up leaves the queue, as etcd's Mutex does.
                var delete = Etcdserverpb_DeleteRangeRequest()
                delete.key = myKey
                await LocalClient.despiteCancellation { [client, delete] in _ = try await client.kv.deleteRange(delete) }
                throw error
            }
            return response
        }
    }

    func unlock(request: V3lockpb_UnlockRequest, context: ServerContext) async throws -> V3lockpb_UnlockResponse {
        try await LocalClient.asEtcdsHandlers {
            var delete = Etcdserverpb_DeleteRangeRequest()
            delete.key = request.key
            var response = V3lockpb_UnlockResponse()
            response.header = try await client.kv.deleteRange(delete).header
            return response
        }
    }
}
