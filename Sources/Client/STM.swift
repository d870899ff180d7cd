import EtcdAPI
import Foundation
import GRPCCore

/// Software transactional memory over the store, in the spirit of etcd's
/// `concurrency.STM` at serializable isolation: a transaction's reads are
/// recorded with their mod revisions and its writes buffered; at commit one
/// Txn applies the writes only if no key it read has changed since (an
/// absent key compares as mod revision 0), else the body runs again on
/// fresh reads. Every committed transaction thus acts as if it ran alone.
public final class STMTransaction {
    let client: BallotClient
    private(set) var reads: [String: Int64] = [:]
    private var cache: [String: String?] = [:]
    private(set) var writes: [(key: String, value: String?)] = []

    init(client: BallotClient) {
        self.client = client
    }

    /// The key's value as this transaction sees it: its own write if any,
    /// else the store's (read once, then remembered).
    public func get(_ key: String) async throws -> String? {
        if let written = writes.last(where: { $0.key == key }) { return written.value }
        if let cached = cache[key] { return cached }
        let kv = try await client.get(key)
        reads[key] = kv?.modRevision ?? 0
        cache[key] = kv?.value
        return kv?.value
    }

    public func put(_ key: String, _ value: String) {
        writes.append((key, value))
    }

    public func delete(_ key: String) {
        writes.append((key, nil))
    }

    /// The commit: compares on every read, the writes in order.
    var commit: Etcdserverpb_TxnRequest {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = reads.sorted { $0.key < $1.key }.map { key, revision in
            var compare = Etcdserverpb_Compare()
            compare.target = .mod
            compare.result = .equal
            compare.key = Data(key.utf8)
            compare.modRevision = revision
            return compare
        }
        txn.success = writes.map { write in
            var operation = Etcdserverpb_RequestOp()
            if let value = write.value {
                var put = Etcdserverpb_PutRequest()
                put.key = Data(write.key.utf8)
                put.value = Data(value.utf8)
                operation.requestPut = put
            } else {
                var delete = Etcdserverpb_DeleteRangeRequest()
                delete.key = Data(write.key.utf8)
                operation.requestDeleteRange = delete
            }
            return operation
        }
        return txn
    }
}

extension BallotClient {
    public static let stmAttemptsDefault = 32

    /// Run `body` as a serializable transaction (`STMTransaction`), again
    /// on conflict up to `attempts` times; its result once committed. A
    /// commit whose fate is unknown (the connection broke after it was
    /// sent) is not repeated: had it applied, running the body again on
    /// what it wrote would apply it twice. That error goes to the caller.
    public func stm<Result: Sendable>(attempts: Int = stmAttemptsDefault, _ body: (STMTransaction) async throws -> Result) async throws -> Result {
        precondition(attempts >= 1, "a transaction is tried at least once")
        for _ in 0..<attempts {
            let transaction = STMTransaction(client: self)
            let result = try await body(transaction)
            if transaction.writes.isEmpty { return result }
            if try await txn(transaction.commit).succeeded { return result }
        }
        throw ClientError.transactionConflicts(attempts: attempts)
    }
}
