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
    var current: Int64 = 0
    var compacted: Int64 = 0

    func latest(_ key: [UInt8], at revision: Int64) -> KeyValue? {
        history[key]?.last { $0.main <= revision }?.kv
    }

    mutating func apply(_ operations: [WriteOperation]) -> (Int64, [WriteOutcome]) {
        let main = current + 1
        var changed = false
        var outcomes: [WriteOutcome] = []
        for operation in operations {
            switch operation {
            case .put(let key, let value, let lease):
                let previous = latest(key, at: main)
                let kv = KeyValue(key: key, value: value, createRevision: previous?.createRevision ?? main,
                                  modRevision: main, version: (previous?.version ?? 0) + 1, lease: lease)
                history[key, default: []].append(Version(main: main, kv: kv))
                outcomes.append(.put(previous: previous))
                changed = true
            case .deleteRange(let key, let rangeEnd):
                let request = RangeRequest(key: key, rangeEnd: rangeEnd)
                let live = liveKeys(request, at: main)
                for kv in live { history[kv.key, default: []].append(Version(main: main, kv: nil)) }
                outcomes.append(.deleted(live))
                changed = changed || !live.isEmpty
            }
        }
        if changed { current = main }
        return (current, outcomes)
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
        let all = liveKeys(request, at: at)
        var kvs = request.countOnly ? [] : all
        if let limit = request.limit { kvs = Array(kvs.prefix(limit)) }
        if request.keysOnly { for i in kvs.indices { kvs[i].value = [] } }
        return .success(RangeResult(kvs: kvs, count: all.count, more: request.limit.map { all.count > $0 } ?? false, revision: current))
    }

    mutating func compact(_ revision: Int64) -> StorageError? {
        if revision <= compacted { return .compacted(requested: revision, compacted: compacted) }
        if revision > current { return .futureRevision(requested: revision, current: current) }
        compacted = revision
        return nil
    }
}
