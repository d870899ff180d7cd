import Consensus

/// An acceptor's slots after its snapshot, each holding the value it
/// accepted there and the round it accepted it in (`Entry.term`).
///
/// Unlike a Raft log, slots fill out of order: an accept for slot 9 may
/// arrive before the one for slot 8. A slot with nothing accepted yet is
/// kept as a vacant entry (round zero, no command; no proposer uses round
/// zero), so the durable log stays one contiguous run the write-ahead log
/// and `SimDisk` hold as they hold Raft's, and filling a hole rewrites the
/// slots from it on (bounded by the slot window).
struct SlotLog: Sendable {
    private(set) var snapshot: SnapshotMetadata
    private(set) var slots: [Entry]
    /// Every slot through here is chosen, and holds the chosen value.
    private(set) var committed: LogIndex
    var applied: LogIndex
    var appliedHandedOut: LogIndex
    /// Every slot through here is durable with what it holds now.
    private(set) var stableThrough: LogIndex
    /// The lowest slot changed since the last `takeUnstable()`.
    private(set) var unstableFrom: LogIndex?
    /// The slots after the snapshot that hold a configuration entry, in
    /// order, chosen or not: the few places where membership changes, so
    /// finding the configuration of a slot never walks the log.
    private(set) var configSlots: [LogIndex] = []

    init(snapshot: SnapshotMetadata, durable: [Entry], commit: LogIndex) {
        self.snapshot = snapshot
        // Vacant slots record nothing; a log does not end in one (a disk
        // whose writes tore apart an append may hold one at its end).
        var kept = durable
        while let tail = kept.last, Self.isVacant(tail) { kept.removeLast() }
        self.slots = kept
        let last = snapshot.index + UInt64(kept.count)
        self.committed = max(snapshot.index, min(commit, last))
        self.applied = snapshot.index
        self.appliedHandedOut = snapshot.index
        self.stableThrough = last
        self.configSlots = kept.filter(Self.isConfig).map(\.index)
    }

    static func isConfig(_ entry: Entry) -> Bool {
        if case .configChange = entry.payload { return true }
        return false
    }

    /// The configuration entry in `slot`, if it holds one.
    func configChange(at slot: LogIndex) -> ConfigChange? {
        if case .configChange(let change)? = entry(at: slot)?.payload { return change }
        return nil
    }

    static func vacant(_ index: LogIndex) -> Entry { Entry(term: .zero, index: index, payload: .noop) }
    static func isVacant(_ entry: Entry) -> Bool { entry.term == .zero }

    var firstIndex: LogIndex { snapshot.index + 1 }
    var lastIndex: LogIndex { snapshot.index + UInt64(slots.count) }

    /// The slot's content, vacant ones included; nil outside the log.
    func entry(at index: LogIndex) -> Entry? {
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return slots[Int(index.rawValue - snapshot.index.rawValue - 1)]
    }

    /// The round the value at `index` was accepted in: the snapshot's for its last slot.
    func round(at index: LogIndex) -> Term? {
        if index == snapshot.index { return snapshot.term }
        return entry(at: index)?.term
    }

    /// Store `entry` in its slot, vacant slots filling any gap before it.
    /// Chosen slots never change: the caller checks.
    mutating func set(_ entry: Entry) {
        precondition(entry.index > committed, "slot \(entry.index) is chosen (commit \(committed)); it never changes")
        precondition(!Self.isVacant(entry), "a slot is set to an accepted value, never back to vacant")
        if entry.index > lastIndex {
            changed(at: lastIndex + 1)
            while lastIndex + 1 < entry.index { slots.append(Self.vacant(lastIndex + 1)) }
            slots.append(entry)
        } else {
            changed(at: entry.index)
            slots[Int(entry.index.rawValue - snapshot.index.rawValue - 1)] = entry
        }
        let known = configSlots.firstIndex(of: entry.index)
        if Self.isConfig(entry) {
            if known == nil {
                configSlots.append(entry.index)
                configSlots.sort()
            }
        } else if let known {
            configSlots.remove(at: known)
        }
    }

    private mutating func changed(at index: LogIndex) {
        unstableFrom = min(unstableFrom ?? index, index)
        stableThrough = min(stableThrough, index - 1)
    }

    mutating func commit(to index: LogIndex) {
        precondition(index <= lastIndex, "commit \(index) beyond the last slot \(lastIndex)")
        precondition(index >= committed, "commit moves back from \(committed) to \(index)")
        committed = index
    }

    /// The slots to write: from the lowest changed one to the end.
    mutating func takeUnstable() -> [Entry] {
        guard let from = unstableFrom else { return [] }
        unstableFrom = nil
        return Array(slots[Int(from.rawValue - snapshot.index.rawValue - 1)...])
    }

    /// The write of slots through `last` is durable; any changed since are not.
    mutating func stabilized(through last: LogIndex) {
        let bound = unstableFrom.map { $0 - 1 } ?? last
        stableThrough = max(stableThrough, min(last, bound, lastIndex))
    }

    /// Chosen, durable slots not yet handed to the state machine, up to `maxBytes` (at least one).
    func nextCommitted(maxBytes: Int) -> [Entry] {
        let end = min(committed, stableThrough)
        guard end > appliedHandedOut else { return [] }
        var out: [Entry] = []
        var bytes = 0
        var index = appliedHandedOut + 1
        while index <= end {
            let entry = entry(at: index)!
            precondition(!Self.isVacant(entry), "chosen slot \(index) is vacant")
            bytes += entry.byteCount
            if !out.isEmpty && bytes > maxBytes { break }
            out.append(entry)
            index = index + 1
        }
        return out
    }

    /// Drop slots through `index`, which a snapshot of the state machine now holds.
    mutating func compact(through index: LogIndex, membership: Membership) {
        precondition(index <= applied && index > snapshot.index, "compact \(index) outside (\(snapshot.index), \(applied)]")
        let term = round(at: index)!
        slots.removeFirst(Int(index.rawValue - snapshot.index.rawValue))
        configSlots.removeAll { $0 <= index }
        snapshot = SnapshotMetadata(index: index, term: term, membership: membership)
        precondition(unstableFrom.map { $0 > index } ?? true, "compacted a slot not yet durable")
    }

    /// Start after a snapshot from the leader: every slot it covers is
    /// chosen. Values accepted in later slots are kept: an acceptor never
    /// forgets an acceptance, which a leader may have counted toward
    /// choosing it. The shell's install discards every stored slot (the
    /// `Ready` contract), so the kept ones are written again after it.
    mutating func install(_ metadata: SnapshotMetadata) {
        precondition(metadata.index > committed, "a snapshot at \(metadata.index) behind commit \(committed)")
        let kept = metadata.index < lastIndex ? Array(slots[Int(metadata.index.rawValue - snapshot.index.rawValue)...]) : []
        snapshot = metadata
        slots = kept
        configSlots.removeAll { $0 <= metadata.index }
        committed = metadata.index
        applied = metadata.index
        appliedHandedOut = metadata.index
        stableThrough = metadata.index
        unstableFrom = kept.isEmpty ? nil : metadata.index + 1
    }
}
