import Consensus

extension MVCCStore {
    /// Run an etcd transaction atomically as one revision (if it writes),
    /// recording `index` as applied in the same LMDB transaction.
    ///
    /// As in etcd, every comparison, nested ones included, is decided on
    /// the state before the transaction; reads inside it see its own
    /// earlier writes.
    public func txn(_ request: TxnRequest, index: LogIndex? = nil) throws(StorageError) -> TxnResponse {
        var bytes = 0
        try validate(request, depth: 0, budget: settings.txnOperationsMax, bytes: &bytes)
        if bytes > settings.requestBytesMax { throw .requestTooLarge(bytes: bytes, limit: settings.requestBytesMax) }
        if Self.containsPut(request) { try checkSpace() }
        let main = currentRevision + 1
        let result = try writeVersions(inPlace: Self.refusesOnlyBeforeWriting(request)) { txn throws(StorageError) -> TxnResponse in
            var sub: Int64 = 0
            let path_ = try decide(request, txn, atOrBefore: main - 1)
            var cursor = 0
            let (succeeded, responses) = try execute(request, txn, main: main, sub: &sub, path: path_, cursor: &cursor)
            let revision = sub > 0 ? main : main - 1
            try txn.put(metaDB, Self.currentKey, KeyEncoding.bigEndian(revision))
            if let index { try txn.put(metaDB, Self.appliedKey, KeyEncoding.bigEndian(Int64(index.rawValue))) }
            return TxnResponse(succeeded: succeeded, responses: finalize(responses, revision: revision), revision: revision)
        }
        currentRevision = result.revision
        if let index { appliedIndex = index }
        return result
    }

    /// Whether running `request` can refuse only before its first write
    /// (`LMDBEnvironment.write(inPlace:)`): comparisons only read, and a branch
    /// of one operation that is not a transaction refuses, if at all,
    /// before it writes (`putVersion` checks first). With two, the second
    /// could refuse after the first wrote.
    static func refusesOnlyBeforeWriting(_ request: TxnRequest) -> Bool {
        for branch in [request.success, request.failure] {
            guard branch.count <= 1 else { return false }
            if case .txn = branch.first { return false }
        }
        return true
    }

    static func containsPut(_ request: TxnRequest) -> Bool {
        var stack = [request]
        while let t = stack.popLast() {
            for op in t.success + t.failure {
                switch op {
                case .put: return true
                case .txn(let nested): stack.append(nested)
                default: continue
                }
            }
        }
        return false
    }

    /// etcd's limits on a transaction (v3rpc checkTxnRequest): the longest
    /// of its compare, success and failure lists may hold `budget`
    /// operations, and a nested transaction gets what that leaves. Keys
    /// must not be empty; a branch must not put one key twice.
    func validate(_ request: TxnRequest, depth: Int, budget: Int, bytes: inout Int) throws(StorageError) {
        if depth > settings.txnDepthMax { throw .txnTooDeep(limit: settings.txnDepthMax) }
        let operations = max(request.compare.count, request.success.count, request.failure.count)
        if operations > budget { throw .tooManyOperations(limit: settings.txnOperationsMax) }
        for comparison in request.compare { try checkKey(comparison.key) }
        for branch in [request.success, request.failure] {
            var written = Set<[UInt8]>()
            for op in branch {
                switch op {
                case .put(let key, let value, let lease, let options):
                    bytes += key.count + value.count
                    try checkKey(key)
                    if value.count > settings.valueBytesMax { throw .valueTooLarge(bytes: value.count, limit: settings.valueBytesMax) }
                    if options.contains(.ignoreValue) && !value.isEmpty { throw .valueProvided }
                    if options.contains(.ignoreLease) && lease != 0 { throw .leaseProvided }
                    if !written.insert(key).inserted { throw .duplicateKey }
                case .deleteRange(let key, _):
                    try checkKey(key)
                case .range(let r):
                    try checkKey(r.key)
                case .txn(let nested):
                    try validate(nested, depth: depth + 1, budget: budget - operations, bytes: &bytes)
                }
            }
        }
    }

    /// The outcome of every comparison in the tree, in execution order,
    /// decided before anything is written.
    func decide(_ request: TxnRequest, _ txn: LMDBTransaction, atOrBefore main: Int64) throws(StorageError) -> [Bool] {
        var outcomes: [Bool] = []
        var stack: [TxnRequest] = [request]
        // Pre-order walk of the taken branches, iteratively.
        while let next = stack.popLast() {
            var holds = true
            for comparison in next.compare where holds {
                let request = RangeRequest(key: comparison.key, rangeEnd: comparison.rangeEnd)
                let matches = try liveKeys(txn, request, atOrBefore: main)
                if comparison.rangeEnd.isEmpty {
                    holds = comparison.holds(for: matches.first)
                } else {
                    holds = matches.allSatisfy { comparison.holds(for: $0) }
                }
            }
            outcomes.append(holds)
            let branch = holds ? next.success : next.failure
            for op in branch.reversed() { if case .txn(let nested) = op { stack.append(nested) } }
        }
        return outcomes
    }

    func execute(
        _ request: TxnRequest, _ txn: LMDBTransaction, main: Int64, sub: inout Int64, path outcomes: [Bool], cursor: inout Int
    ) throws(StorageError) -> (Bool, [OperationResponse]) {
        let succeeded = outcomes[cursor]
        cursor += 1
        var responses: [OperationResponse] = []
        for op in succeeded ? request.success : request.failure {
            switch op {
            case .put(let key, let value, let lease, let options):
                responses.append(.put(previous: try putVersion(txn, key, value, lease, options, main: main, sub: &sub)))
            case .deleteRange(let key, let rangeEnd):
                responses.append(.deleted(try deleteVersions(txn, key, rangeEnd, main: main, sub: &sub)))
            case .range(let r):
                // Reads see this transaction's own writes.
                let view = sub > 0 ? main : main - 1
                let at = r.revision ?? view
                if at < compactedRevision { throw .compacted(requested: at, compacted: compactedRevision) }
                if at > view { throw .futureRevision(requested: at, current: view) }
                responses.append(.range(shape(r, try liveKeys(txn, r, atOrBefore: at), revision: 0)))
            case .txn(let nested):
                let (ok, inner) = try execute(nested, txn, main: main, sub: &sub, path: outcomes, cursor: &cursor)
                responses.append(.txn(TxnResponse(succeeded: ok, responses: inner, revision: 0)))
            }
        }
        return (succeeded, responses)
    }

    /// Fill in the header revision of every nested response.
    func finalize(_ responses: [OperationResponse], revision: Int64) -> [OperationResponse] {
        responses.map { response in
            switch response {
            case .range(var r):
                r.revision = revision
                return .range(r)
            case .txn(var t):
                t.revision = revision
                t.responses = finalize(t.responses, revision: revision)
                return .txn(t)
            default:
                return response
            }
        }
    }
}
