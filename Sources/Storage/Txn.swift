/// etcd's transaction: if every comparison holds, run `success`, else
/// `failure`; all of it as one revision.
public struct TxnRequest: Sendable, Equatable {
    public var compare: [Comparison]
    public var success: [RequestOperation]
    public var failure: [RequestOperation]

    public init(compare: [Comparison] = [], success: [RequestOperation] = [], failure: [RequestOperation] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct Comparison: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }

    public enum Relation: Sendable, Equatable {
        case equal, greater, less, notEqual
    }

    public var key: [UInt8]
    /// As in `RangeRequest`: every key in the range must satisfy the comparison.
    public var rangeEnd: [UInt8]
    public var relation: Relation
    public var target: Target

    public init(key: [UInt8], rangeEnd: [UInt8] = [], _ relation: Relation, _ target: Target) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.relation = relation
        self.target = target
    }

    /// etcd's rule: a missing key compares as version, create and mod
    /// revision 0 and lease 0; a comparison on its value is false.
    func holds(for kv: KeyValue?) -> Bool {
        func order<T: Comparable>(_ a: T, _ b: T) -> Bool {
            switch relation {
            case .equal: a == b
            case .greater: a > b
            case .less: a < b
            case .notEqual: a != b
            }
        }
        switch target {
        case .version(let v): return order(kv?.version ?? 0, v)
        case .createRevision(let v): return order(kv?.createRevision ?? 0, v)
        case .modRevision(let v): return order(kv?.modRevision ?? 0, v)
        case .lease(let v): return order(kv?.lease ?? 0, v)
        case .value(let v):
            guard let kv else { return false }
            switch relation {
            case .equal: return kv.value == v
            case .notEqual: return kv.value != v
            case .greater: return v.lexicographicallyPrecedes(kv.value)
            case .less: return kv.value.lexicographicallyPrecedes(v)
            }
        }
    }
}

/// One operation of a transaction branch.
public indirect enum RequestOperation: Sendable, Equatable {
    case range(RangeRequest)
    case put(key: [UInt8], value: [UInt8], lease: Int64, options: PutOptions = [])
    case deleteRange(key: [UInt8], rangeEnd: [UInt8])
    case txn(TxnRequest)
}

public indirect enum OperationResponse: Sendable, Equatable {
    case range(RangeResult)
    case put(previous: KeyValue?)
    case deleted([KeyValue])
    case txn(TxnResponse)
}

public struct TxnResponse: Sendable, Equatable {
    public var succeeded: Bool
    public var responses: [OperationResponse]
    /// The store's revision after the transaction.
    public var revision: Int64

    public init(succeeded: Bool, responses: [OperationResponse], revision: Int64) {
        self.succeeded = succeeded
        self.responses = responses
        self.revision = revision
    }
}
