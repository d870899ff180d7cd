import EtcdAPI
import Foundation
import GRPCCore

/// A key's version as the store holds it.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: String
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64

    init(_ kv: Mvccpb_KeyValue) {
        key = String(decoding: kv.key, as: UTF8.self)
        value = String(decoding: kv.value, as: UTF8.self)
        createRevision = kv.createRevision
        modRevision = kv.modRevision
        version = kv.version
        lease = kv.lease
    }
}

extension BallotClient {
    /// etcd's Range as it is, at `consistency`.
    public func range(_ request: Etcdserverpb_RangeRequest, consistency: ReadConsistency = .linearizable) async throws -> Etcdserverpb_RangeResponse {
        var request = request
        if consistency.isSerializableFlag { request.serializable = true }
        let message = request
        let metadata = consistency.metadata
        return try await call(.read) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).range(message, metadata: metadata, options: options)
        }
    }

    /// One key's newest version, or nil.
    public func get(_ key: String, consistency: ReadConsistency = .linearizable) async throws -> KeyValue? {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        return try await range(request, consistency: consistency).kvs.first.map(KeyValue.init)
    }

    /// Every key under `prefix`, in key order.
    public func get(prefix: String, consistency: ReadConsistency = .linearizable) async throws -> [KeyValue] {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(prefix.utf8)
        request.rangeEnd = KeyPrefix.rangeEnd(Data(prefix.utf8))
        return try await range(request, consistency: consistency).kvs.map(KeyValue.init)
    }

    /// Put `value` at `key`; the store's revision after it. A put is
    /// repeated after an ambiguous failure only if `idempotent` (putting
    /// the same value twice is harmless unless something reads versions).
    @discardableResult
    public func put(_ key: String, _ value: String, lease: Int64 = 0, idempotent: Bool = false) async throws -> Int64 {
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = Data(value.utf8)
        request.lease = lease
        let message = request
        return try await call(idempotent ? .idempotentWrite : .write) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).put(message, options: options)
        }.header.revision
    }

    /// Delete `key` (or every key under it with `prefix`); how many went.
    /// Deleting twice deletes nothing more: repeated after any failure.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(key.utf8)
        if prefix { request.rangeEnd = KeyPrefix.rangeEnd(Data(key.utf8)) }
        let message = request
        return try await call(.idempotentWrite) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).deleteRange(message, options: options)
        }.deleted
    }

    /// etcd's Txn as it is. A Txn whose branches only read is a read; one
    /// that writes is repeated only if `idempotent` (say, guarded by
    /// compares that fail once it applied).
    public func txn(_ request: Etcdserverpb_TxnRequest, idempotent: Bool = false) async throws -> Etcdserverpb_TxnResponse {
        let reads = (request.success + request.failure).allSatisfy { if case .requestRange = $0.request { true } else { false } }
        return try await call(reads ? .read : idempotent ? .idempotentWrite : .write) { connection, options in
            try await Etcdserverpb_KV.Client(wrapping: connection).txn(request, options: options)
        }
    }
}
