import Consensus

/// The in-memory log of one member: a compacted prefix summarized by a
/// snapshot, then the entries after it. Tracks how far the entries are
/// durable (`stableIndex`), committed, and handed out for applying.
struct RaftLog: Sendable {
    /// The compacted prefix; index 0 and term 0 when nothing is compacted.
    private(set) var snapshot: SnapshotMetadata
    /// Entries at `snapshot.index + 1 ...`.
    private(set) var entries: [Entry]
    /// Entries through here were written by the shell (acknowledged by `advance`).
    var stableIndex: LogIndex
    private(set) var committed: LogIndex
    /// Entries through here were handed out in a `Ready` for applying.
    var appliedHandedOut: LogIndex
    /// Entries through here are applied (acknowledged by `advance`).
    var applied: LogIndex

    init(snapshot: SnapshotMetadata, entries: [Entry], committed: LogIndex, applied: LogIndex) {
        precondition(entries.first.map { $0.index == snapshot.index + 1 } ?? true, "entries must follow the snapshot")
        precondition(applied >= snapshot.index, "applied index below the snapshot")
        self.snapshot = snapshot
        self.entries = entries
        self.stableIndex = snapshot.index + UInt64(entries.count)
        self.committed = committed
        self.appliedHandedOut = applied
        self.applied = applied
        precondition(committed <= lastIndex, "commit \(committed) beyond last index \(lastIndex)")
        precondition(applied <= committed || entries.isEmpty && applied == snapshot.index, "applied beyond commit")
    }

    var firstIndex: LogIndex { snapshot.index + 1 }
    var lastIndex: LogIndex { snapshot.index + UInt64(entries.count) }
    var lastTerm: Term { entries.last?.term ?? snapshot.term }

    /// The term of the entry at `index`, or nil when compacted or beyond the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshot.index { return snapshot.term }
        if index < snapshot.index || index > lastIndex { return nil }
        return entries[Int(index.rawValue - firstIndex.rawValue)].term
    }

    func entry(at index: LogIndex) -> Entry? {
        if index < firstIndex || index > lastIndex { return nil }
        return entries[Int(index.rawValue - firstIndex.rawValue)]
    }

    func matchTerm(_ index: LogIndex, _ term: Term) -> Bool { self.term(at: index) == term }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours.
    func isUpToDate(lastIndex otherIndex: LogIndex, lastTerm otherTerm: Term) -> Bool {
        otherTerm > lastTerm || (otherTerm == lastTerm && otherIndex >= lastIndex)
    }

    /// Entries in `[from, through]`, at most `maxBytes` of them but at least one.
    func entries(from: LogIndex, through: LogIndex, maxBytes: Int) -> [Entry] {
        precondition(from >= firstIndex, "entries from \(from) are compacted (first \(firstIndex))")
        if from > through { return [] }
        let start = Int(from.rawValue - firstIndex.rawValue)
        let end = Int(min(through, lastIndex).rawValue - firstIndex.rawValue)
        var bytes = 0
        var stop = start
        while stop <= end {
            bytes += entries[stop].byteCount
            if bytes > maxBytes && stop > start { break }
            stop += 1
        }
        return Array(entries[start..<stop])
    }

    /// Entries not yet written by the shell.
    var unstableEntries: [Entry] {
        stableIndex >= lastIndex ? [] : Array(entries[Int(stableIndex.rawValue + 1 - firstIndex.rawValue)...])
    }

    /// Committed entries not yet handed out, only those already durable here.
    func nextCommitted(maxBytes: Int) -> [Entry] {
        let upTo = min(committed, stableIndex)
        if appliedHandedOut >= upTo { return [] }
        return entries(from: appliedHandedOut + 1, through: upTo, maxBytes: maxBytes)
    }

    mutating func append(_ entry: Entry) {
        precondition(entry.index == lastIndex + 1, "log gap: \(entry.index) after \(lastIndex)")
        precondition(entry.term >= lastTerm, "term regression: \(entry.term) after \(lastTerm)")
        entries.append(entry)
    }

    /// The first index at which `incoming` disagrees with this log, or nil if
    /// every incoming entry is already here. An index past the end counts as
    /// a disagreement (a new entry).
    func firstConflict(_ incoming: [Entry]) -> LogIndex? {
        for entry in incoming where !matchTerm(entry.index, entry.term) { return entry.index }
        return nil
    }

    /// Replace everything from `incoming.first.index` on with `incoming`.
    mutating func truncateAndAppend(_ incoming: [Entry]) {
        guard let first = incoming.first else { return }
        precondition(first.index > committed, "truncating committed entry \(first.index) (commit \(committed))")
        precondition(first.index >= firstIndex && first.index <= lastIndex + 1, "append at \(first.index) leaves a gap")
        entries.removeSubrange(Int(first.index.rawValue - firstIndex.rawValue)...)
        stableIndex = min(stableIndex, first.index - 1)
        entries.append(contentsOf: incoming)
    }

    /// The largest index at or below `index` whose term is at most `term`:
    /// the last place where a log ending in `term` could match this one.
    func lastIndex(atOrBelow index: LogIndex, withTermAtMost term: Term) -> (LogIndex, Term) {
        var i = min(index, lastIndex)
        while i > snapshot.index {
            let t = self.term(at: i)!
            if t <= term { return (i, t) }
            i = i - 1
        }
        return (i, snapshot.term)
    }

    mutating func commit(to index: LogIndex) {
        precondition(index <= lastIndex, "commit \(index) beyond last index \(lastIndex)")
        if index > committed { committed = index }
    }

    /// Replace the whole log by a snapshot received from the leader.
    mutating func restore(_ metadata: SnapshotMetadata) {
        precondition(metadata.index > committed, "restoring a snapshot that is not ahead of commit")
        snapshot = metadata
        entries = []
        stableIndex = metadata.index
        committed = metadata.index
        appliedHandedOut = metadata.index
        applied = metadata.index
    }

    /// Forget entries through `index`; `metadata` describes the state there.
    mutating func compact(_ metadata: SnapshotMetadata) {
        precondition(metadata.index > snapshot.index && metadata.index <= applied, "compaction out of range")
        precondition(term(at: metadata.index) == metadata.term, "snapshot term mismatch")
        entries.removeFirst(Int(metadata.index.rawValue - snapshot.index.rawValue))
        snapshot = metadata
    }
}
