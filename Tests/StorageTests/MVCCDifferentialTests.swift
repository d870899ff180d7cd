import Consensus
import Foundation
import Storage
import Testing

/// Drives the LMDB store and `ReferenceMVCC` with the same seeded random
/// operations and compares every answer, including errors, across restarts.
@Suite struct MVCCDifferentialTests {
    /// Keys chosen to stress ordering: prefixes, embedded zero bytes, 0xFF;
    /// and keys too long for an LMDB key (escaped, over 460 bytes), which
    /// share their first 460 bytes with each other and with short keys, and
    /// sit on each side of the cut (`longKeys`).
    static let shortKeys: [[UInt8]] = [
        [0x61], [0x61, 0x00], [0x61, 0x00, 0x00], [0x61, 0x62], [0x61, 0x62, 0x63], [0x62], [0x62, 0xFF],
        [0x00], [0x00, 0x01], [0xFF], [0xFF, 0xFF], [0x63], [0x63, 0x00, 0x61], [0x64, 0x64],
    ]

    static let longKeys: [[UInt8]] = {
        let l = { (count: Int) in [UInt8](repeating: 0x6C, count: count) }
        return [
            l(458),  // the longest short key: 458 bytes + the 2-byte end
            l(459), l(470), l(470) + [0x00], l(470) + [0x61], l(470) + [0x61, 0x00], l(470) + [0xFF], l(470) + [0x6D],
            l(457) + [0x00], l(458) + [0x00], l(458) + [0x00, 0x61], l(459) + [0x00, 0x62], l(459) + [0x01], l(600),
            [UInt8](repeating: 0, count: 300), [UInt8](repeating: 0, count: 300) + [0x01], l(100) + [0x00] + l(400),
        ]
    }()

    /// Seeds with long keys mixed in run fewer operations: comparing keys
    /// that share 460 bytes is slow in a debug build.
    @Test(arguments: [(1, false), (2, false), (3, true), (4, true)])
    func agreesWithReferenceModel(seed: UInt64, withLongKeys: Bool) throws {
        let keys = withLongKeys ? Self.shortKeys + Self.longKeys : Self.shortKeys
        let directory = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.commitDurability = .none
        settings.compactionBatchKeys = 3  // compactions span many steps, interleaved with everything else
        var store: MVCCStore? = try MVCCStore(directory: directory.path, settings: settings)
        var interleavedSteps = 0
        var model = ReferenceMVCC()
        var random = DeterministicRandom(seed: seed)
        func key() -> [UInt8] { keys.randomElement(using: &random)! }
        func rangeEnd(for start: [UInt8]) -> [UInt8] {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: return []
            case 1: return [0]
            default: return key()
            }
        }
        func decorate(_ r: RangeRequest) -> RangeRequest {
            var r = r
            if random.chance(percent: 30) {
                r.sortOrder = random.chance(percent: 50) ? .ascend : .descend
                r.sortTarget = [.key, .version, .createRevision, .modRevision, .value].randomElement(using: &random)!
            }
            let near = { Int64.random(in: max(0, model.current - 30)...(model.current + 1), using: &random) }
            if random.chance(percent: 15) { r.minModRevision = near() }
            if random.chance(percent: 15) { r.maxModRevision = near() }
            if random.chance(percent: 15) { r.minCreateRevision = near() }
            if random.chance(percent: 15) { r.maxCreateRevision = near() }
            return r
        }
        func randomComparison() -> Comparison {
            let k = key()
            let relation: Comparison.Relation = [.equal, .greater, .less, .notEqual].randomElement(using: &random)!
            let near = Int64.random(in: 0...(model.current + 1), using: &random)
            let target: Comparison.Target = switch Int.random(in: 0..<5, using: &random) {
            case 0: .version(Int64.random(in: 0...3, using: &random))
            case 1: .createRevision(near)
            case 2: .modRevision(near)
            case 3: .lease(Int64.random(in: 0...2, using: &random))
            default: .value(model.latest(k, at: model.current)?.value ?? Array("v\(near)".utf8))
            }
            return Comparison(key: k, rangeEnd: random.chance(percent: 20) ? rangeEnd(for: k) : [], relation, target)
        }
        func randomBranch(depth: Int) -> [RequestOperation] {
            (0..<Int.random(in: 0...3, using: &random)).map { _ in
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<4: return .put(key: key(), value: Array("t\(Int.random(in: 0...99, using: &random))".utf8), lease: 0)
                case 4..<6: let k = key(); return .deleteRange(key: k, rangeEnd: rangeEnd(for: k))
                case 6..<9: let k = key(); return .range(decorate(RangeRequest(key: k, rangeEnd: rangeEnd(for: k))))
                default: return depth < 2 ? .txn(randomTxn(depth: depth + 1)) : .range(RangeRequest(key: key()))
                }
            }
        }
        func randomTxn(depth: Int) -> TxnRequest {
            TxnRequest(
                compare: (0..<Int.random(in: 0...2, using: &random)).map { _ in randomComparison() },
                success: randomBranch(depth: depth), failure: randomBranch(depth: depth))
        }
        var txnsSucceeded = 0
        var feedsWithEvents = 0
        let operations = withLongKeys ? 8_000 : 25_000
        var reads = 0
        var nonEmptyReads = 0
        for step in 0..<operations {
            if store!.compactionCursor != nil {
                _ = try store!.compactionStep()
                interleavedSteps += 1
            }
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<40:
                var batch: [WriteOperation] = []
                var used = Set<[UInt8]>()
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let k = key()
                    if used.insert(k).inserted {
                        // Sometimes etcd's ignore flags, now and then misused on purpose.
                        var options: PutOptions = []
                        if random.chance(percent: 10) { options.insert(.ignoreValue) }
                        if random.chance(percent: 10) { options.insert(.ignoreLease) }
                        let value = options.contains(.ignoreValue) && !random.chance(percent: 10) ? [] : Array("v\(step)".utf8)
                        let lease = options.contains(.ignoreLease) && !random.chance(percent: 10) ? 0 : Int64.random(in: 0...2, using: &random)
                        batch.append(.put(key: k, value: value, lease: lease, options: options))
                    }
                }
                let index = LogIndex(UInt64(step + 1))
                let want = model.apply(batch)
                do {
                    let got = try store!.apply(batch, index: index)
                    if case .success(let w) = want {
                        #expect(got.revision == w.0 && got.outcomes == w.1, "step \(step): \(batch)")
                    } else {
                        Issue.record("step \(step): store accepted \(batch); model says \(want)")
                    }
                } catch {
                    if case .failure(let e) = want { #expect(e == error, "step \(step)") } else { Issue.record("step \(step): \(error)") }
                    #expect(store!.currentRevision == model.current, "a refused batch changes nothing")
                }
            case 40..<55:
                let start = key()
                let batch = [WriteOperation.deleteRange(key: start, rangeEnd: rangeEnd(for: start))]
                let got = try store!.apply(batch)
                let want = try model.apply(batch).get()
                #expect(got.revision == want.0 && got.outcomes == want.1, "step \(step): \(batch)")
            case 55..<70:
                let request = randomTxn(depth: 0)
                let want = model.txn(request)
                do {
                    let got = try store!.txn(request, index: LogIndex(UInt64(step + 1)))
                    #expect(Result<TxnResponse, StorageError>.success(got) == want, "step \(step): \(request)")
                    if case .success(let r) = want, r.succeeded { txnsSucceeded += 1 }
                } catch {
                    #expect(Result<TxnResponse, StorageError>.failure(error) == want, "step \(step): \(request)")
                    #expect(store!.currentRevision == model.current, "a failed transaction must change nothing")
                }
            case 70..<95:
                let start = key()
                let revision: Int64? = random.chance(percent: 50) ? nil
                    : Int64.random(in: max(0, model.compacted - 2)...(model.current + 1), using: &random)
                let request = decorate(RangeRequest(
                    key: start, rangeEnd: rangeEnd(for: start), revision: revision,
                    limit: random.chance(percent: 30) ? Int.random(in: 0...3, using: &random) : nil,
                    countOnly: random.chance(percent: 10), keysOnly: random.chance(percent: 10)))
                let want = model.range(request)
                do {
                    let got = try store!.range(request)
                    #expect(.success(got) == want, "step \(step): \(request)")
                    reads += 1
                    if !got.kvs.isEmpty { nonEmptyReads += 1 }
                } catch {
                    #expect(.failure(error) == want, "step \(step): \(request)")
                }
            case 95..<96:
                // The watch feed from a recent revision (compacted history excluded).
                let start = key()
                let from = Int64.random(in: max(0, model.compacted - 1)...(model.current + 1), using: &random)
                let range = RangeRequest(key: start, rangeEnd: rangeEnd(for: start))
                let want = model.events(from: from, range: range)
                do {
                    let got = try store!.events(from: from, range: range)
                    if !got.isEmpty { feedsWithEvents += 1 }
                    if case .success(let w) = want, w != got {
                        // Within one revision the store orders by key too; compare as sets per revision.
                        #expect(Dictionary(grouping: got, by: \.kv.modRevision).mapValues { Set($0.map(\.description)) }
                            == Dictionary(grouping: w, by: \.kv.modRevision).mapValues { Set($0.map(\.description)) },
                            "step \(step): events from \(from) in \(range)")
                    }
                    if case .failure(let e) = want { Issue.record("step \(step): store gave events where the model says \(e)") }
                } catch {
                    #expect(Result<[WatchEvent], StorageError>.failure(error) == want, "step \(step)")
                }
            case 96..<98:
                let revision = Int64.random(in: max(1, model.compacted - 1)...(model.current + 1), using: &random)
                var got: StorageError?
                do { try store!.beginCompaction(to: revision) } catch { got = error }
                #expect(got == model.compact(revision), "step \(step): compact \(revision)")
            default:
                // Restart: everything must come back from the files.
                store = nil
                store = try MVCCStore(directory: directory.path, settings: settings)
                #expect(store!.currentRevision == model.current)
                #expect(store!.compactedRevision == model.compacted)
            }
        }
        #expect(reads > operations / 5)
        #expect(txnsSucceeded > operations / 50, "both branches must run")
        #expect(interleavedSteps > 100, "compaction batches must interleave with other work")
        #expect(feedsWithEvents > operations / 500, "the watch feed must be compared on real events")
        #expect(nonEmptyReads > reads / 4, "reads must see data for the comparison to mean anything")
    }

    @Test func appliedIndexTravelsWithTheWrite() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try MVCCStore(directory: directory.path)
            try store.apply([.put(key: [1], value: [2], lease: 0)], index: 41)
            try store.apply([.put(key: [1], value: [3], lease: 0)], index: 42)
        }
        let reopened = try MVCCStore(directory: directory.path)
        #expect(reopened.appliedIndex == 42)
        #expect(reopened.currentRevision == 3, "history starts at revision 1, as etcd's")
        let kv = try reopened.range(RangeRequest(key: [1])).kvs
        #expect(kv == [KeyValue(key: [1], value: [3], createRevision: 2, modRevision: 3, version: 2, lease: 0)])
    }

    @Test func errorsUseEtcdMessages() throws {
        let directory = try TemporaryDirectory()
        let store = try MVCCStore(directory: directory.path)
        try store.apply([.put(key: [1], value: [1], lease: 0)])
        try store.apply([.put(key: [1], value: [2], lease: 0)])
        try store.compact(to: 3)
        #expect(throws: StorageError.compacted(requested: 2, compacted: 3)) { try store.range(RangeRequest(key: [1], revision: 2)) }
        #expect(StorageError.compacted(requested: 1, compacted: 2).description == "mvcc: required revision has been compacted")
        #expect(StorageError.futureRevision(requested: 9, current: 2).description == "mvcc: required revision is a future revision")
        #expect(throws: StorageError.emptyKey) { try store.apply([.put(key: [], value: [1], lease: 0)]) }
        let big = [UInt8](repeating: 1, count: MVCCSettings.requestBytesMaxDefault / 2 + 1)
        #expect(throws: StorageError.requestTooLarge(bytes: 2 * big.count + 2, limit: MVCCSettings.requestBytesMaxDefault)) {
            try store.apply([.put(key: [1], value: big, lease: 0), .put(key: [2], value: big, lease: 0)])
        }
        #expect(StorageError.requestTooLarge(bytes: 0, limit: 0).description == "etcdserver: request is too large")
        let many = TxnRequest(success: (0..<129).map { .put(key: [UInt8(truncatingIfNeeded: $0), 1], value: [1], lease: 0) })
        #expect(throws: StorageError.tooManyOperations(limit: 128)) { try store.txn(many) }
        #expect(store.currentRevision == 3, "a refused write changes nothing")
    }
}

/// A directory under the system temp dir, removed when the value dies.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ballot-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct HashKVTests {
    @Test func sameHistorySameHashDifferentHistoryDifferentHash() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        let x = try MVCCStore(directory: a.path), y = try MVCCStore(directory: b.path)
        for i in 0..<100 {
            let op = WriteOperation.put(key: Array("k\(i % 7)".utf8), value: Array("v\(i)".utf8), lease: 0)
            try x.apply([op])
            try y.apply([op])
        }
        #expect(try x.hashKV() == y.hashKV())
        #expect(try x.hashKV(at: 50) == y.hashKV(at: 50))
        #expect(try x.hashKV(at: 50).hash != x.hashKV().hash)
        try y.apply([.put(key: Array("k1".utf8), value: Array("diverged".utf8), lease: 0)])
        try x.apply([.put(key: Array("k1".utf8), value: Array("v-other".utf8), lease: 0)])
        #expect(try x.hashKV().hash != y.hashKV().hash, "a diverged member must show")
        #expect(try x.hashKV(at: 100) == y.hashKV(at: 100), "the shared prefix still agrees")
    }
}
