import EtcdAPI
import Foundation
import Storage

/// Translations between etcd's wire messages and the store's own types.
/// Kept in one place so every service (and the applier, which runs the
/// same requests from the log) reads them identically.
public enum Conversions {
    public static func bytes(_ data: Data) -> [UInt8] { [UInt8](data) }

    public static func keyValue(_ kv: KeyValue, keysOnly: Bool = false) -> Mvccpb_KeyValue {
        var out = Mvccpb_KeyValue()
        out.key = Data(kv.key)
        if !keysOnly { out.value = Data(kv.value) }
        out.createRevision = kv.createRevision
        out.modRevision = kv.modRevision
        out.version = kv.version
        out.lease = kv.lease
        return out
    }

    public static func rangeRequest(_ r: Etcdserverpb_RangeRequest) -> RangeRequest {
        var out = RangeRequest(
            key: bytes(r.key), rangeEnd: bytes(r.rangeEnd), revision: r.revision > 0 ? r.revision : nil,
            limit: r.limit > 0 ? Int(r.limit) : nil, countOnly: r.countOnly, keysOnly: r.keysOnly)
        out.sortTarget = switch r.sortTarget {
        case .version: .version
        case .create: .createRevision
        case .mod: .modRevision
        case .value: .value
        default: .key
        }
        switch r.sortOrder {
        case .ascend: out.sortOrder = .ascend
        case .descend: out.sortOrder = .descend
        default:
            // etcd: without an order, a target other than the key sorts ascending.
            out.sortOrder = out.sortTarget == .key ? nil : .ascend
        }
        if r.minModRevision > 0 { out.minModRevision = r.minModRevision }
        if r.maxModRevision > 0 { out.maxModRevision = r.maxModRevision }
        if r.minCreateRevision > 0 { out.minCreateRevision = r.minCreateRevision }
        if r.maxCreateRevision > 0 { out.maxCreateRevision = r.maxCreateRevision }
        return out
    }

    public static func rangeResponse(_ result: RangeResult, keysOnly: Bool) -> Etcdserverpb_RangeResponse {
        var out = Etcdserverpb_RangeResponse()
        out.kvs = result.kvs.map { keyValue($0, keysOnly: keysOnly) }
        out.count = Int64(result.count)
        out.more = result.more
        return out
    }

    public static func putOptions(_ p: Etcdserverpb_PutRequest) -> PutOptions {
        var options: PutOptions = []
        if p.ignoreValue { options.insert(.ignoreValue) }
        if p.ignoreLease { options.insert(.ignoreLease) }
        return options
    }

    public static func txnRequest(_ t: Etcdserverpb_TxnRequest) -> TxnRequest {
        TxnRequest(compare: t.compare.map(comparison), success: t.success.map(operation), failure: t.failure.map(operation))
    }

    public static func comparison(_ c: Etcdserverpb_Compare) -> Comparison {
        let relation: Comparison.Relation = switch c.result {
        case .greater: .greater
        case .less: .less
        case .notEqual: .notEqual
        default: .equal
        }
        let target: Comparison.Target = switch c.target {
        case .create: .createRevision(c.createRevision)
        case .mod: .modRevision(c.modRevision)
        case .value: .value(bytes(c.value))
        case .lease: .lease(c.lease)
        default: .version(c.version)
        }
        return Comparison(key: bytes(c.key), rangeEnd: bytes(c.rangeEnd), relation, target)
    }

    public static func operation(_ op: Etcdserverpb_RequestOp) -> RequestOperation {
        switch op.request {
        case .requestRange(let r): .range(rangeRequest(r))
        case .requestPut(let p): .put(key: bytes(p.key), value: bytes(p.value), lease: p.lease, options: putOptions(p))
        case .requestDeleteRange(let d): .deleteRange(key: bytes(d.key), rangeEnd: bytes(d.rangeEnd))
        case .requestTxn(let t): .txn(txnRequest(t))
        case nil: .range(RangeRequest(key: [], countOnly: true))
        }
    }

    /// etcd's response for a transaction, with each operation's options
    /// (prev_kv, keys_only) taken from the request that produced it.
    ///
    /// Each inner response carries a header with only a revision, as
    /// etcd's applier fills it: a put, the transaction's new revision; a
    /// range or a delete, the revision as of that operation (new once the
    /// transaction changed something); a nested transaction, an empty header.
    public static func txnResponse(_ r: TxnResponse, request: Etcdserverpb_TxnRequest) -> Etcdserverpb_TxnResponse {
        let begin = r.revision - (changes(r) ? 1 : 0)
        var changed = false
        return txnResponse(r, request: request, begin: begin, changed: &changed)
    }

    /// Whether a transaction wrote anything.
    public static func changes(_ r: TxnResponse) -> Bool {
        r.responses.contains { response in
            switch response {
            case .put: true
            case .deleted(let kvs): !kvs.isEmpty
            case .txn(let nested): changes(nested)
            case .range: false
            }
        }
    }

    private static func txnResponse(_ r: TxnResponse, request: Etcdserverpb_TxnRequest, begin: Int64,
                                    changed: inout Bool) -> Etcdserverpb_TxnResponse {
        var out = Etcdserverpb_TxnResponse()
        out.succeeded = r.succeeded
        let branch = r.succeeded ? request.success : request.failure
        for (op, response) in zip(branch, r.responses) {
            var item = Etcdserverpb_ResponseOp()
            switch (op.request, response) {
            case (.requestRange(let rr), .range(let result)):
                var range = rangeResponse(result, keysOnly: rr.keysOnly)
                range.header.revision = changed ? begin + 1 : begin
                item.responseRange = range
            case (.requestPut(let p), .put(let previous)):
                changed = true
                var put = Etcdserverpb_PutResponse()
                put.header.revision = begin + 1
                if p.prevKv, let previous { put.prevKv = keyValue(previous) }
                item.responsePut = put
            case (.requestDeleteRange(let d), .deleted(let kvs)):
                if !kvs.isEmpty { changed = true }
                var del = Etcdserverpb_DeleteRangeResponse()
                del.header.revision = changed ? begin + 1 : begin
                del.deleted = Int64(kvs.count)
                if d.prevKv { del.prevKvs = kvs.map { keyValue($0) } }
                item.responseDeleteRange = del
            case (.requestTxn(let inner), .txn(let nested)):
                var txn = txnResponse(nested, request: inner, begin: begin, changed: &changed)
                txn.header = Etcdserverpb_ResponseHeader()
                item.responseTxn = txn
            default:
                break
            }
            out.responses.append(item)
        }
        return out
    }
}
