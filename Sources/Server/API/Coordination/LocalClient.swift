import EtcdAPI
import Foundation
import GRPCCore
import StateMachine

/// The member's own KV, Lease and Watch services as a client, in process:
/// what etcd's server-side Lock and Election services (and its gateway)
/// are built on (etcd's `v3client`). The recipes below are etcd's
/// `clientv3/concurrency` ones, so keys, revisions and waits are the same.
struct LocalClient: Sendable {
    let kv: Etcdserverpb_KV.Client<LocalTransport.Client>
    let lease: Etcdserverpb_Lease.Client<LocalTransport.Client>
    let watch: Etcdserverpb_Watch.Client<LocalTransport.Client>

    init(_ client: GRPCClient<LocalTransport.Client>) {
        kv = .init(wrapping: client)
        lease = .init(wrapping: client)
        watch = .init(wrapping: client)
    }

    /// etcd's session TTL when a request names no lease (`concurrency.defaultSessionTTL`).
    static let sessionTTLSeconds: Int64 = 60

    /// The request's lease, or a new one of the session TTL when it names
    /// none, as `concurrency.NewSession(WithLease(id))` does. (etcd's server
    /// orphans the session at once, so the lease is never kept alive.)
    func sessionLease(_ requested: Int64) async throws -> Int64 {
        guard requested == 0 else { return requested }
        var grant = Etcdserverpb_LeaseGrantRequest()
        grant.ttl = Self.sessionTTLSeconds
        return try await lease.leaseGrant(grant).id
    }

    /// etcd's key for a session under a prefix: the prefix, then the lease in hex.
    static func sessionKey(prefix: Data, lease: Int64) -> Data {
        prefix + Data(String(lease, radix: 16).utf8)
    }

    /// The key under `prefix` created first (`WithFirstCreate`) or last
    /// (`WithLastCreate`), optionally among those created up to a revision.
    func edge(_ prefix: Data, first: Bool, maxCreateRevision: Int64 = 0) -> Etcdserverpb_RangeRequest {
        var range = Etcdserverpb_RangeRequest()
        range.key = prefix
        range.rangeEnd = KeyPrefix.rangeEnd(prefix)
        range.sortTarget = .create
        range.sortOrder = first ? .ascend : .descend
        range.limit = 1
        range.maxCreateRevision = maxCreateRevision
        return range
    }

    /// Wait until every key under `prefix` created at or before
    /// `maxCreateRevision` is deleted (`concurrency.waitDeletes`); the
    /// header of the last look, which found none.
    func waitDeletes(_ prefix: Data, maxCreateRevision: Int64) async throws -> Etcdserverpb_ResponseHeader {
        while true {
            let found = try await kv.range(edge(prefix, first: false, maxCreateRevision: maxCreateRevision))
            guard let last = found.kvs.first else { return found.header }
            try await waitDelete(last.key, from: found.header.revision)
        }
    }

    /// Wait for `key`'s deletion, watching from `revision` (`concurrency.waitDelete`).
    func waitDelete(_ key: Data, from revision: Int64) async throws {
        var create = Etcdserverpb_WatchRequest()
        create.createRequest.key = key
        create.createRequest.startRevision = revision
        try await watch.watch(request: Self.holdingOpen(create)) { response in
            for try await message in response.messages {
                if message.canceled { throw Self.watchEnded(message) }
                if message.events.contains(where: { $0.type == .delete }) { return }
            }
            throw RPCError(code: .unknown, message: "lost watcher waiting for delete")
        }
    }

    /// A watch stream that sends `create` and stays open until the call
    /// ends (the response handler returning ends it).
    static func holdingOpen(_ create: Etcdserverpb_WatchRequest) -> StreamingClientRequest<Etcdserverpb_WatchRequest> {
        StreamingClientRequest(of: Etcdserverpb_WatchRequest.self) { writer in
            try await writer.write(create)
            while true { try await Task.sleep(for: .seconds(3_600)) }
        }
    }

    /// The error for a watch the server cancelled (its start was compacted).
    static func watchEnded(_ message: Etcdserverpb_WatchResponse) -> RPCError {
        message.compactRevision > 0
            ? EtcdError.compacted.rpcError
            : RPCError(code: .unknown, message: message.cancelReason.isEmpty ? "watch canceled" : message.cancelReason)
    }

    /// A Lock or Election handler's errors as etcd's server returns them:
    /// etcd's handlers get their KV's errors through a Go client, as plain
    /// errors, which gRPC sends with code Unknown and the same message
    /// (e.g. an unknown lease: code 2, "etcdserver: requested lease not found").
    static func asEtcdsHandlers<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RPCError where error.code != .unknown {
            throw RPCError(code: .unknown, message: error.message)
        }
    }

    /// Run cleanup that must happen even though the caller was cancelled
    /// (a waiter that gave up removes its key, as etcd's does with the
    /// client's own context): an unstructured task does not inherit the
    /// cancellation, and the caller waits for it.
    static func despiteCancellation(_ body: @escaping @Sendable () async throws -> Void) async {
        await Task { try? await body() }.value
    }
}
