import Storage

/// The simplest model of etcd's MVCC semantics: every version ever
/// written, kept forever; compaction only forbids reading before it. The
/// real store deletes history physically, so agreeing with this model
/// proves compaction removed nothing a permitted read could see.
struct ReferenceMVCC {
    struct Version {
        var main: Int64
        var kv: KeyValue?  // nil: tombstone
    }

    var history: [[UInt8]: [Version]] = [:]
    var current: Int64 = MVCCStore.firstRevision
    var compacted: Int64 = 0

    func latest(_ key: [UInt8], at revision: Int64) -> KeyValue? {
        history[key]?.last { $0.main <= revision }?.kv
    }

    /// The value and lease a put leaves, or why it is refused (etcd's rules).
    func resolvePut(_ key: [UInt8], _ value: [UInt8], _ lease: Int64, _ options: PutOptions, at revision: Int64) -> Result<([UInt8], Int64), StorageError> {
        if options.contains(.ignoreValue) && !value.isEmpty { return .failure(.valueProvided) }
        if options.contains(.ignoreLease) && lease != 0 { return .failure(.leaseProvided) }
        let previous = latest(key, at: revision)
        if !options.isEmpty && previous == nil { return .failure(.keyNotFound) }
        return .success((options.contains(.ignoreValue) ? previous!.value : value, options.contains(.ignoreLease) ? previous!.lease : lease))
    }

    mutating func apply(_ operations: [WriteOperation]) -> Result<(Int64, [WriteOutcome]), StorageError> {
        let main = current + 1
        var changed = false
        var outcomes: [WriteOutcome] = []
        let saved = history
        // Like etcd, malformed requests are refused before anything applies.
        for case .put(_, let value, let lease, let options) in operations {
            if options.contains(.ignoreValue) && !value.isEmpty { return .failure(.valueProvided) }
            if options.contains(.ignoreLease) && lease != 0 { return .failure(.leaseProvided) }
        }
        for operation in operations {
            switch operation {
            case .put(let key, let value, let lease, let options):
                let previous = latest(key, at: main)
                switch resolvePut(key, value, lease, options, at: main) {
                case .failure(let e):
                    history = saved
                    return .failure(e)
                case .success(let (v, l)):
                    let kv = KeyValue(key: key, value: v, createRevision: previous?.createRevision ?? main,
                                      modRevision: main, version: (previous?.version ?? 0) + 1, lease: l)
                    history[key, default: []].append(Version(main: main, kv: kv))
                    outcomes.append(.put(previous: previous))
                    changed = true
                }
            case .deleteRange(let key, let rangeEnd):
                let request = RangeRequest(key: key, rangeEnd: rangeEnd)
                let live = liveKeys(request, at: main)
                for kv in live { history[kv.key, default: []].append(Version(main: main, kv: nil)) }
                outcomes.append(.deleted(live))
                changed = changed || !live.isEmpty
            }
        }
        if changed { current = main }
        return .success((current, outcomes))
    }

    func liveKeys(_ request: RangeRequest, at revision: Int64) -> [KeyValue] {
        history.keys.filter { inRange(request, $0) }.sorted { $0.lexicographicallyPrecedes($1) }
            .compactMap { latest($0, at: revision) }
    }

    func inRange(_ r: RangeRequest, _ k: [UInt8]) -> Bool {
        if r.rangeEnd.isEmpty { return k == r.key }
        if k.lexicographicallyPrecedes(r.key) { return false }
        return r.rangeEnd == [0] || k.lexicographicallyPrecedes(r.rangeEnd)
    }

    func range(_ request: RangeRequest) -> Result<RangeResult, StorageError> {
        let at = request.revision ?? current
        if at < compacted { return .failure(.compacted(requested: at, compacted: compacted)) }
        if at > current { return .failure(.futureRevision(requested: at, current: current)) }
        return .success(shape(request, liveKeys(request, at: at), revision: current))
    }

    func shape(_ request: RangeRequest, _ all: [KeyValue], revision: Int64) -> RangeResult {
        var kvs = request.countOnly ? [] : all.filter {
            $0.modRevision >= (request.minModRevision ?? .min) && $0.modRevision <= (request.maxModRevision ?? .max)
                && $0.createRevision >= (request.minCreateRevision ?? .min) && $0.createRevision <= (request.maxCreateRevision ?? .max)
        }
        if let order = request.sortOrder {
            func value(_ kv: KeyValue) -> [UInt8] {
                func be(_ v: Int64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: v) >> (56 - 8 * $0)) } }
                switch request.sortTarget {
                case .key: return kv.key
                case .value: return kv.value
                case .version: return be(kv.version)
                case .createRevision: return be(kv.createRevision)
                case .modRevision: return be(kv.modRevision)
                }
            }
            // Stable sort on key order, so ties stay in key order.
            let indexed = kvs.enumerated().map { ($0.offset, $0.element) }
            kvs = indexed.sorted { a, b in
                let (x, y) = (value(a.1), value(b.1))
                if x == y { return a.0 < b.0 }
                return order == .ascend ? x.lexicographicallyPrecedes(y) : y.lexicographicallyPrecedes(x)
            }.map(\.1)
        }
        let filtered = kvs.count
        if let limit = request.limit { kvs = Array(kvs.prefix(limit)) }
        if request.keysOnly { for i in kvs.indices { kvs[i].value = [] } }
        let more = request.limit.map { (request.countOnly ? all.count : filtered) > $0 } ?? false
        return RangeResult(kvs: kvs, count: all.count, more: more, revision: revision)
    }

    func holds(_ c: Comparison, at revision: Int64) -> Bool {
        let request = RangeRequest(key: c.key, rangeEnd: c.rangeEnd)
        let matches = liveKeys(request, at: revision)
        func check(_ kv: KeyValue?) -> Bool {
            func cmp<T: Comparable>(_ a: T, _ b: T) -> Bool {
                switch c.relation { case .equal: a == b; case .greater: a > b; case .less: a < b; case .notEqual: a != b }
            }
            switch c.target {
            case .version(let v): return cmp(kv?.version ?? 0, v)
            case .createRevision(let v): return cmp(kv?.createRevision ?? 0, v)
            case .modRevision(let v): return cmp(kv?.modRevision ?? 0, v)
            case .lease(let v): return cmp(kv?.lease ?? 0, v)
            case .value(let v):
                guard let kv else { return false }
                switch c.relation {
                case .equal: return kv.value == v
                case .notEqual: return kv.value != v
                case .greater: return v.lexicographicallyPrecedes(kv.value)
                case .less: return kv.value.lexicographicallyPrecedes(v)
                }
            }
        }
        return c.rangeEnd.isEmpty ? check(matches.first) : matches.allSatisfy(check)
    }

    /// Decide every comparison first (on the state before the transaction),
    /// then run the taken branches.
    /// etcd refuses a branch that puts one key twice, anywhere in the tree.
    static func hasDuplicatePut(_ t: TxnRequest) -> Bool {
        for branch in [t.success, t.failure] {
            var keys: [[UInt8]] = []
            for op in branch {
                if case .put(let key, _, _, _) = op {
                    if keys.contains(key) { return true }
                    keys.append(key)
                }
                if case .txn(let nested) = op, hasDuplicatePut(nested) { return true }
            }
        }
        return false
    }

    mutating func txn(_ request: TxnRequest) -> Result<TxnResponse, StorageError> {
        if Self.hasDuplicatePut(request) { return .failure(.duplicateKey) }
        let before = current
        let main = current + 1
        var changed = false
        func run(_ t: TxnRequest) -> Result<(Bool, [OperationResponse]), StorageError> {
            let ok = t.compare.allSatisfy { holds($0, at: before) }
            var out: [OperationResponse] = []
            for op in ok ? t.success : t.failure {
                switch op {
                case .put(let key, let value, let lease, let options):
                    let previous = latest(key, at: main)
                    guard case .success(let (value, lease)) = resolvePut(key, value, lease, options, at: main) else {
                        if case .failure(let e) = resolvePut(key, value, lease, options, at: main) { return .failure(e) }
                        return .failure(.keyNotFound)
                    }
                    let kv = KeyValue(key: key, value: value, createRevision: previous?.createRevision ?? main,
                                      modRevision: main, version: (previous?.version ?? 0) + 1, lease: lease)
                    history[key, default: []].append(Version(main: main, kv: kv))
                    changed = true
                    out.append(.put(previous: previous))
                case .deleteRange(let key, let end):
                    let live = liveKeys(RangeRequest(key: key, rangeEnd: end), at: main)
                    for kv in live { history[kv.key, default: []].append(Version(main: main, kv: nil)) }
                    changed = changed || !live.isEmpty
                    out.append(.deleted(live))
                case .range(let r):
                    let view = changed ? main : before
                    let at = r.revision ?? view
                    if at < compacted { return .failure(.compacted(requested: at, compacted: compacted)) }
                    if at > view { return .failure(.futureRevision(requested: at, current: view)) }
                    out.append(.range(shape(r, liveKeys(r, at: at), revision: 0)))
                case .txn(let nested):
                    switch run(nested) {
                    case .success(let (ok, inner)): out.append(.txn(TxnResponse(succeeded: ok, responses: inner, revision: 0)))
                    case .failure(let e): return .failure(e)
                    }
                }
            }
            return .success((ok, out))
        }
        let snapshot = history
        switch run(request) {
        case .failure(let e):
            history = snapshot  // atomic: nothing of a failed transaction stays
            return .failure(e)
        case .success(let (ok, out)):
            if changed { current = main }
            return .success(TxnResponse(succeeded: ok, responses: Self.stamp(out, current), revision: current))
        }
    }

    static func stamp(_ responses: [OperationResponse], _ revision: Int64) -> [OperationResponse] {
        responses.map {
            switch $0 {
            case .range(var r): r.revision = revision; return .range(r)
            case .txn(var t): t.revision = revision; t.responses = stamp(t.responses, revision); return .txn(t)
            default: return $0
            }
        }
    }

    /// Every change to a key in `range` at revision `from` or later, in
    /// revision order (within a revision, in key order: a transaction's
    /// writes to one key range arrive as the store numbered them).
    func events(from: Int64, range: RangeRequest) -> Result<[WatchEvent], StorageError> {
        if from <= compacted && from > 0 && compacted > 0 { return .failure(.compacted(requested: from, compacted: compacted)) }
        var all: [(main: Int64, seq: Int, event: WatchEvent)] = []
        for (key, versions) in history where inRange(range, key) {
            for (n, v) in versions.enumerated() where v.main >= from {
                if let kv = v.kv {
                    all.append((v.main, n, WatchEvent(kind: .put, kv: kv)))
                } else {
                    let deleted = KeyValue(key: key, value: [], createRevision: 0, modRevision: v.main, version: 0, lease: 0)
                    all.append((v.main, n, WatchEvent(kind: .delete, kv: deleted)))
                }
            }
        }
        return .success(all.sorted { a, b in a.main != b.main ? a.main < b.main : a.event.kv.key.lexicographicallyPrecedes(b.event.kv.key) }.map(\.event))
    }

    mutating func compact(_ revision: Int64) -> StorageError? {
        if revision <= compacted { return .compacted(requested: revision, compacted: compacted) }
        if revision > current { return .futureRevision(requested: revision, current: current) }
        compacted = revision
        return nil
    }
}
