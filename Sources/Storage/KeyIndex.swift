#if canImport(Glibc)
import Glibc
#endif

/// One stored version of a key, as the key index knows it: where its record
/// is (its revision, the record's key in the `revisions` database) and
/// whether it is a deletion.
struct IndexedVersion: Equatable, Sendable {
    var main: Int64
    var sub: Int64
    var tombstone: Bool

    func isBefore(_ other: IndexedVersion) -> Bool {
        main != other.main ? main < other.main : sub < other.sub
    }
}

/// Every key's versions, in key order, in memory: etcd's `treeIndex`. The
/// records live in the `revisions` database keyed by revision, where each
/// commit appends; this index, rebuilt from them when the store opens,
/// says which revisions hold a key and which key a range covers.
///
/// Why in memory: with the versions stored under their keys, every put of
/// a key in another part of the key space dirtied a leaf page of its own,
/// and LMDB writes every page a commit touched, copy on write; etcd's
/// benchmark (random keys) made Ballot write six times etcd's bytes per
/// put. Keyed by revision, a commit's records share the last leaf pages.
///
/// Why hand-written: the package list's sorted collections are behind
/// swift-collections' unstable trait. This is a sorted array of sorted
/// chunks (at most `chunkEntriesMax` keys each), found by binary search:
/// lookups in O(log n), inserts moving one chunk's entries at most.
///
/// Not thread-safe: the store's owner serialises access (the server's
/// `StoreLock`: the apply thread alone, or readers together).
struct KeyIndex {
    struct Entry {
        var key: [UInt8]
        /// Oldest first; never empty.
        var versions: [IndexedVersion]
    }

    /// A full chunk splits in two halves.
    static let chunkEntriesMax = 512

    /// Sorted by key, each non-empty; the last key of one sorts before the
    /// first key of the next.
    private var chunks: [[Entry]] = []
    /// Keys held (with at least one version, live or not).
    private(set) var keyCount = 0

    /// `a` compared with `b` as bytes: negative, zero or positive.
    static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                let common = min(x.count, y.count)
                if common > 0, let p = x.baseAddress, let q = y.baseAddress {
                    let order = memcmp(p, q, common)
                    if order != 0 { return Int(order) }
                }
                return x.count - y.count
            }
        }
    }

    /// The first position whose key is at or after `key`: its chunk and
    /// the entry in it (`chunks.count, 0` when every key sorts before).
    private func lowerBound(_ key: [UInt8]) -> (chunk: Int, entry: Int) {
        var low = 0, high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if Self.compare(chunks[mid][chunks[mid].count - 1].key, key) < 0 { low = mid + 1 } else { high = mid }
        }
        guard low < chunks.count else { return (chunks.count, 0) }
        let chunk = chunks[low]
        var first = 0, last = chunk.count
        while first < last {
            let mid = (first + last) / 2
            if Self.compare(chunk[mid].key, key) < 0 { first = mid + 1 } else { last = mid }
        }
        return (low, first)
    }

    private func find(_ key: [UInt8]) -> (chunk: Int, entry: Int)? {
        let at = lowerBound(key)
        guard at.chunk < chunks.count, Self.compare(chunks[at.chunk][at.entry].key, key) == 0 else { return nil }
        return at
    }

    /// `key`'s versions, oldest first; nil if it has none.
    func versions(of key: [UInt8]) -> [IndexedVersion]? {
        find(key).map { chunks[$0.chunk][$0.entry].versions }
    }

    /// The newest version of `key` written at or before revision `main`.
    func newest(_ key: [UInt8], atOrBefore main: Int64) -> IndexedVersion? {
        guard let at = find(key) else { return nil }
        return Self.newest(chunks[at.chunk][at.entry].versions, atOrBefore: main)
    }

    static func newest(_ versions: [IndexedVersion], atOrBefore main: Int64) -> IndexedVersion? {
        // Reads are mostly of the present: look from the newest back.
        var i = versions.count - 1
        while i >= 0 {
            if versions[i].main <= main { return versions[i] }
            i -= 1
        }
        return nil
    }

    /// Whether `key` has the version at `main`/`sub` (compaction keeps
    /// exactly the records the index still names).
    func contains(_ key: [UInt8], main: Int64, sub: Int64) -> Bool {
        guard let versions = versions(of: key) else { return false }
        var low = 0, high = versions.count
        let probe = IndexedVersion(main: main, sub: sub, tombstone: false)
        while low < high {
            let mid = (low + high) / 2
            if versions[mid].isBefore(probe) { low = mid + 1 } else { high = mid }
        }
        return low < versions.count && versions[low].main == main && versions[low].sub == sub
    }

    /// Record a new version of `key`, newer than every version it has.
    mutating func append(_ key: [UInt8], _ version: IndexedVersion) {
        let at = lowerBound(key)
        if at.chunk < chunks.count, Self.compare(chunks[at.chunk][at.entry].key, key) == 0 {
            let last = chunks[at.chunk][at.entry].versions[chunks[at.chunk][at.entry].versions.count - 1]
            precondition(last.isBefore(version), "version \(version.main)_\(version.sub) of a key is not after its newest \(last.main)_\(last.sub)")
            chunks[at.chunk][at.entry].versions.append(version)
            return
        }
        keyCount += 1
        let entry = Entry(key: key, versions: [version])
        if chunks.isEmpty {
            chunks.append([entry])
            return
        }
        // Past every key: onto the end of the last chunk.
        let chunk = at.chunk < chunks.count ? at.chunk : chunks.count - 1
        let position = at.chunk < chunks.count ? at.entry : chunks[chunk].count
        chunks[chunk].insert(entry, at: position)
        if chunks[chunk].count > Self.chunkEntriesMax {
            let upper = Array(chunks[chunk][(Self.chunkEntriesMax / 2)...])
            chunks[chunk].removeSubrange((Self.chunkEntriesMax / 2)...)
            chunks.insert(upper, at: chunk + 1)
        }
    }

    /// Undo `append(key, version)`, the newest change to `key`: a write
    /// rolled back.
    mutating func removeNewest(_ key: [UInt8], _ version: IndexedVersion) {
        guard let at = find(key) else { preconditionFailure("undoing a version of a key the index lacks") }
        let removed = chunks[at.chunk][at.entry].versions.removeLast()
        precondition(removed == version, "undoing \(version.main)_\(version.sub), but the newest is \(removed.main)_\(removed.sub)")
        if chunks[at.chunk][at.entry].versions.isEmpty { removeEntry(at) }
    }

    private mutating func removeEntry(_ at: (chunk: Int, entry: Int)) {
        chunks[at.chunk].remove(at: at.entry)
        if chunks[at.chunk].isEmpty { chunks.remove(at: at.chunk) }
        keyCount -= 1
    }

    /// Visit each key from `start` on, in key order, with its versions,
    /// while `visit` returns true.
    func forEach(from start: [UInt8], _ visit: ([UInt8], [IndexedVersion]) throws(StorageError) -> Bool) throws(StorageError) {
        var (c, e) = lowerBound(start)
        while c < chunks.count {
            let chunk = chunks[c]
            while e < chunk.count {
                if try !visit(chunk[e].key, chunk[e].versions) { return }
                e += 1
            }
            c += 1
            e = 0
        }
    }

    /// Forget every version a read at `revision` or later cannot see: per
    /// key, all before its newest version at or before `revision`, and
    /// that one too if it is a deletion (etcd's compaction).
    mutating func compact(to revision: Int64) {
        var kept: [[Entry]] = []
        var current: [Entry] = []
        current.reserveCapacity(Self.chunkEntriesMax)
        var keys = 0
        for chunk in chunks {
            for var entry in chunk {
                var newest = -1
                for (i, version) in entry.versions.enumerated() where version.main <= revision { newest = i }
                if newest >= 0 {
                    let drop = entry.versions[newest].tombstone ? newest + 1 : newest
                    entry.versions.removeFirst(drop)
                }
                guard !entry.versions.isEmpty else { continue }
                current.append(entry)
                keys += 1
                if current.count == Self.chunkEntriesMax / 2 {
                    kept.append(current)
                    current = []
                    current.reserveCapacity(Self.chunkEntriesMax)
                }
            }
        }
        if !current.isEmpty { kept.append(current) }
        chunks = kept
        keyCount = keys
    }

    /// Test-only: the index's invariants hold (every chunk non-empty and
    /// sorted, chunks in order, versions increasing, the key count right).
    func checkInvariants() -> Bool {
        var previous: [UInt8]?
        var keys = 0
        for chunk in chunks {
            guard !chunk.isEmpty, chunk.count <= Self.chunkEntriesMax else { return false }
            for entry in chunk {
                if let previous, Self.compare(previous, entry.key) >= 0 { return false }
                guard !entry.versions.isEmpty else { return false }
                for i in entry.versions.indices.dropFirst() where !entry.versions[i - 1].isBefore(entry.versions[i]) { return false }
                previous = entry.key
                keys += 1
            }
        }
        return keys == keyCount
    }
}
