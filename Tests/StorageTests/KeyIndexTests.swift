import Consensus
import Foundation
@testable import Storage
import Testing

/// The in-memory key index against a plain dictionary: appends, undos and
/// compactions in random order, over enough keys to split many chunks.
@Suite struct KeyIndexTests {
    @Test(arguments: [1, 2, 3])
    func agreesWithADictionary(seed: UInt64) throws {
        var random = DeterministicRandom(seed: seed)
        var index = KeyIndex()
        var model: [[UInt8]: [IndexedVersion]] = [:]
        var undo: [([UInt8], IndexedVersion)] = []
        var main: Int64 = 1
        var compacted: Int64 = 0
        for step in 0..<20_000 {
            let roll = random.next() % 100
            if roll < 80 {
                main += 1
                let key = Self.key(random.next() % 3_000)
                let version = IndexedVersion(main: main, sub: 0, tombstone: random.next() % 5 == 0)
                index.append(key, version)
                model[key, default: []].append(version)
                undo.append((key, version))
            } else if roll < 95, let (key, version) = undo.popLast() {
                index.removeNewest(key, version)
                model[key]!.removeLast()
                if model[key]!.isEmpty { model[key] = nil }
            } else if roll >= 99, main > compacted {
                compacted = compacted + Int64(random.next() % UInt64(main - compacted)) + 1
                index.compact(to: compacted)
                for (key, versions) in model {
                    var kept = versions
                    if let newest = kept.lastIndex(where: { $0.main <= compacted }) {
                        kept.removeFirst(kept[newest].tombstone ? newest + 1 : newest)
                    }
                    model[key] = kept.isEmpty ? nil : kept
                }
                undo = []
            }
            if step % 1_000 == 0 { try Self.check(index, model, at: main) }
        }
        try Self.check(index, model, at: main)
    }

    static func key(_ n: UInt64) -> [UInt8] { Array("key-\(n)".utf8) }

    static func check(_ index: KeyIndex, _ model: [[UInt8]: [IndexedVersion]], at main: Int64) throws {
        #expect(index.checkInvariants())
        #expect(index.keyCount == model.count)
        var visited: [[UInt8]] = []
        try index.forEach(from: []) { key, versions throws(StorageError) in
            #expect(model[key] == versions)
            visited.append(key)
            return true
        }
        #expect(visited == model.keys.sorted { $0.lexicographicallyPrecedes($1) })
        for (key, versions) in model {
            #expect(index.newest(key, atOrBefore: main) == versions.last)
            let middle = versions[versions.count / 2]
            #expect(index.newest(key, atOrBefore: middle.main) == middle)
            #expect(index.contains(key, main: middle.main, sub: middle.sub))
            #expect(!index.contains(key, main: middle.main, sub: 1))
        }
        // A range starting between keys begins at the next one.
        if let some = model.keys.first {
            var first: [UInt8]?
            try index.forEach(from: some + [0]) { key, _ throws(StorageError) in
                first = key
                return false
            }
            #expect(first == model.keys.filter { some.lexicographicallyPrecedes($0) }.min { $0.lexicographicallyPrecedes($1) })
        }
    }
}
