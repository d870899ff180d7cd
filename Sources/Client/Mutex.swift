import EtcdAPI
import Foundation
import GRPCCore

/// A lock held through a `Session`, in the spirit of etcd's
/// `concurrency.Mutex`, on the members' Lock service (`v3lockpb`: the
/// holder's key is `<name>/<lease>`, the lock goes to the oldest key under
/// the name). Acquiring gives a fencing token, the key's create revision,
/// which only grows from one holder to the next: guard every write to
/// what the lock protects with `guarded(_:)`, so that a holder that lost
/// the lock (its session expired while it was paused) has its writes
/// refused instead of overwriting the next holder's.
public final class Mutex: Sendable {
    public let name: String
    public let session: Session
    private let held = Locked<(key: Data, token: Int64)?>(nil)

    public init(_ name: String, session: Session) {
        self.name = name
        self.session = session
    }

    /// Wait until this session holds the lock; the fencing token. Asking
    /// again with the same session is harmless (the same key), so the
    /// wait is taken up again after a failure.
    @discardableResult
    public func lock() async throws -> Int64 {
        var request = V3lockpb_LockRequest()
        request.name = Data(name.utf8)
        request.lease = session.lease
        let key = try await session.client.call(.idempotentWrite, waitsForTurn: true) { connection, options in
            try await V3lockpb_Lock.Client(wrapping: connection).lock(request, options: options)
        }.key
        guard let kv = try await session.client.get(String(decoding: key, as: UTF8.self)) else {
            // Granted, then gone: the session's lease expired in between.
            throw ClientError.leaseGone(id: session.lease)
        }
        held.withLock { $0 = (key, kv.createRevision) }
        return kv.createRevision
    }

    /// The holder's key and fencing token while held.
    public var fencingToken: Int64? { held.withLock { $0?.token } }
    public var key: String? { held.withLock { $0.map { String(decoding: $0.key, as: UTF8.self) } } }

    /// A Txn that runs `operations` only while this holder still holds
    /// the lock: its key still exists with the token's create revision.
    public func guarded(_ operations: [Etcdserverpb_RequestOp]) -> Etcdserverpb_TxnRequest {
        precondition(fencingToken != nil, "guard writes only while holding the lock")
        let (key, token) = held.withLock { $0! }
        var compare = Etcdserverpb_Compare()
        compare.target = .create
        compare.result = .equal
        compare.key = key
        compare.createRevision = token
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [compare]
        txn.success = operations
        return txn
    }

    /// Put `value` at `key` only while holding the lock: true if it landed.
    public func guardedPut(_ key: String, _ value: String) async throws -> Bool {
        var put = Etcdserverpb_PutRequest()
        put.key = Data(key.utf8)
        put.value = Data(value.utf8)
        var operation = Etcdserverpb_RequestOp()
        operation.requestPut = put
        // Guarded: once it applied, a repeat finds the same holder and puts the same value.
        return try await session.client.txn(guarded([operation]), idempotent: true).succeeded
    }

    /// Release the lock (delete the holder's key).
    public func unlock() async throws {
        guard let key = held.withLock({ $0?.key }) else { return }
        var request = V3lockpb_UnlockRequest()
        request.key = key
        _ = try await session.client.call(.idempotentWrite) { connection, options in
            try await V3lockpb_Lock.Client(wrapping: connection).unlock(request, options: options)
        }
        held.withLock { $0 = nil }
    }
}
