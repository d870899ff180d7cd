import EtcdAPI
import StateMachine
import Storage

/// What etcd refuses before proposing (its v3rpc `key.go`), refused here
/// before proposing too, with etcd's errors: nothing doomed enters the log,
/// and a client sees the same refusal from Ballot as from etcd.
///
/// The recursion over nested transactions is bounded by the protobuf
/// decoder, which refuses messages nested 100 deep.
enum RequestChecks {
    static func range(_ request: Etcdserverpb_RangeRequest) throws(EtcdError) {
        if request.key.isEmpty { throw .emptyKey }
    }

    static func put(_ request: Etcdserverpb_PutRequest) throws(EtcdError) {
        if request.key.isEmpty { throw .emptyKey }
    }

    static func deleteRange(_ request: Etcdserverpb_DeleteRangeRequest) throws(EtcdError) {
        if request.key.isEmpty { throw .emptyKey }
    }

    /// etcd's checkTxnRequest, then checkIntervals on both branches.
    static func txn(_ request: Etcdserverpb_TxnRequest, maxOperations: Int) throws(EtcdError) {
        try limits(request, budget: maxOperations)
        _ = try intervals(request.success)
        _ = try intervals(request.failure)
    }

    /// The longest of the compare, success and failure lists may hold
    /// `budget` operations; a nested transaction gets what that leaves.
    static func limits(_ request: Etcdserverpb_TxnRequest, budget: Int) throws(EtcdError) {
        let operations = max(request.compare.count, request.success.count, request.failure.count)
        if operations > budget { throw .tooManyOperations }
        if request.compare.contains(where: { $0.key.isEmpty }) { throw .emptyKey }
        for op in request.success + request.failure {
            switch op.request {
            case .requestRange(let r): try range(r)
            case .requestPut(let p): try put(p)
            case .requestDeleteRange(let d): try deleteRange(d)
            case .requestTxn(let t): try limits(t, budget: budget - operations)
            // etcd's checkRequestOp: an empty operation is "key not found".
            case nil: throw .keyNotFound
            }
        }
    }

    /// etcd's checkIntervals: within one level of a transaction (and the
    /// levels nested in it), no key may be put twice or both put and
    /// deleted, except that the two branches of a nested transaction may
    /// put the same key (only one of them runs). Returns the level's puts
    /// and deletes for the level above.
    static func intervals(_ operations: [Etcdserverpb_RequestOp]) throws(EtcdError) -> (puts: Set<[UInt8]>, deletes: [RangeRequest]) {
        var deletes: [RangeRequest] = operations.compactMap { op in
            guard case .requestDeleteRange(let d) = op.request else { return nil }
            return RangeRequest(key: [UInt8](d.key), rangeEnd: [UInt8](d.rangeEnd))
        }
        var puts = Set<[UInt8]>()
        for op in operations {
            guard case .requestTxn(let nested) = op.request else { continue }
            let then = try intervals(nested.success)
            let otherwise = try intervals(nested.failure)
            for key in then.puts {
                if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in otherwise.puts {
                if puts.contains(key) && !then.puts.contains(key) { throw .duplicateKey }
                if deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes += then.deletes + otherwise.deletes
        }
        for op in operations {
            guard case .requestPut(let p) = op.request else { continue }
            let key = [UInt8](p.key)
            if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
            puts.insert(key)
        }
        return (puts, deletes)
    }
}
