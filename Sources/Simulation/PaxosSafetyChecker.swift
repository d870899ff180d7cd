import Consensus
import MultiPaxos

/// Paxos's safety properties, checked after every simulation step on the
/// real cores and on what each member's disk made durable: one leader per
/// round; one round holds one value per slot; a value is chosen once a
/// quorum made its acceptance durable, and no slot has two chosen; only
/// proposed commands (and the no-ops that fill holes) are chosen; every
/// member commits and applies the same value in each slot. The Raft
/// checker's log-shaped properties (Log Matching, Leader Completeness) do
/// not hold for Paxos, whose slots are accepted in any order and whose
/// values are proposed again in later rounds.
struct PaxosSafetyChecker: Sendable {
    private struct SlotRound: Hashable, Sendable {
        var slot: LogIndex
        var round: Term
    }

    private struct Acceptance: Sendable {
        var value: Entry.Payload
        var acceptors: Set<NodeID>
    }

    private var leaderOfRound: [Term: NodeID] = [:]
    private(set) var leadersElected = 0
    private var acceptances: [SlotRound: Acceptance] = [:]
    /// The value a quorum's durable acceptances chose, per slot.
    private var chosen: [LogIndex: Entry.Payload] = [:]
    /// The value any member committed or applied, per slot.
    private var decided: [LogIndex: Entry.Payload] = [:]
    /// Every command a client's request made a leader propose.
    private var proposed: Set<[UInt8]> = []
    private var seenCommit: [NodeID: LogIndex] = [:]
    /// α: a configuration entry decided in slot `k` governs slots after `k + α`.
    var configurationDelay: UInt64 = 0
    /// Every slot through here is decided: the configurations of slots
    /// through here + α + 1 are known.
    private var decidedThrough: LogIndex = .zero
    /// Decided configuration entries, by slot.
    private var decidedChanges: [(slot: LogIndex, change: ConfigChange)] = []
    /// Acceptances in slots whose configuration is not known yet (a slot
    /// α below them is undecided): counted once it is.
    private var deferred: Set<SlotRound> = []

    var decidedCount: Int { decided.count }

    /// A crashed member restarts from disk: forget what we assumed of its memory.
    mutating func forget(_ id: NodeID) { seenCommit[id] = nil }

    mutating func noteProposed(_ command: [UInt8]) { proposed.insert(command) }

    /// Every configuration change an operator made a leader propose.
    private var proposedChanges: [ConfigChange] = []
    mutating func noteProposed(_ change: ConfigChange) { proposedChanges.append(change) }

    mutating func observe(_ core: PaxosCore) throws(SafetyViolation) {
        if core.role == .leader {
            if let other = leaderOfRound[core.term], other != core.id {
                throw SafetyViolation(.electionSafety, "members \(other) and \(core.id) both lead round \(core.term)")
            }
            if leaderOfRound[core.term] == nil {
                leaderOfRound[core.term] = core.id
                leadersElected += 1
            }
        }
        var slot = max(seenCommit[core.id] ?? core.snapshotMetadata.index, core.snapshotMetadata.index) + 1
        while slot <= core.commitIndex {
            guard let entry = core.slot(slot) else { break }
            try decide(entry, by: core.id, how: "committed")
            slot = slot + 1
        }
        seenCommit[core.id] = core.commitIndex
    }

    /// Entries that reached member `id`'s disk (synced, or kept by a torn
    /// write): each is an acceptance in its round.
    mutating func observeDurable(_ entries: [Entry], by id: NodeID) throws(SafetyViolation) {
        for entry in entries where entry.term > .zero {
            let key = SlotRound(slot: entry.index, round: entry.term)
            var record = acceptances[key] ?? Acceptance(value: entry.payload, acceptors: [])
            if record.value != entry.payload {
                throw SafetyViolation(.chosenOnce, "slot \(entry.index) round \(entry.term): n\(id) accepted \(entry.payload), another member \(record.value)")
            }
            record.acceptors.insert(id)
            acceptances[key] = record
            try count(key)
        }
    }

    /// The configuration whose quorums choose `slot`, from decided entries
    /// alone (the protocol's definition, not any member's view); nil while
    /// a slot it depends on is undecided.
    private func configuration(for slot: LogIndex) -> Membership? {
        // The founders' slot first: before it, no configuration is known.
        guard decidedThrough >= 1, slot.rawValue <= decidedThrough.rawValue + configurationDelay + 1 else { return nil }
        var result = Membership.empty
        for (k, change) in decidedChanges {
            if case .bootstrap = change.kind {
                if k < slot { result = PaxosCore.applying(change, to: result) }
            } else if k.rawValue + configurationDelay < slot.rawValue {
                result = PaxosCore.applying(change, to: result)
            }
        }
        return result
    }

    /// Whether the acceptances of one slot and round make a quorum of the slot's configuration.
    private mutating func count(_ key: SlotRound) throws(SafetyViolation) {
        guard let record = acceptances[key] else { return }
        guard let configuration = configuration(for: key.slot) else {
            deferred.insert(key)
            return
        }
        deferred.remove(key)
        guard configuration.tally({ record.acceptors.contains($0) ? true : nil }) == .won else { return }
        if let earlier = chosen[key.slot] {
            if earlier != record.value {
                throw SafetyViolation(.chosenOnce, "slot \(key.slot): \(record.value) chosen in round \(key.round), \(earlier) chosen before")
            }
        } else {
            try checkProposed(record.value, at: key.slot)
            chosen[key.slot] = record.value
        }
    }

    /// A member applied `entry`: no member may ever apply another value in its slot.
    mutating func observeApply(_ entry: Entry, by id: NodeID) throws(SafetyViolation) {
        try decide(entry, by: id, how: "applied")
    }

    private mutating func decide(_ entry: Entry, by id: NodeID, how: String) throws(SafetyViolation) {
        if let existing = decided[entry.index] {
            if existing != entry.payload {
                throw SafetyViolation(.stateMachineSafety, "n\(id) \(how) \(entry.payload) in slot \(entry.index) where \(existing) was decided")
            }
        } else {
            try checkProposed(entry.payload, at: entry.index)
            decided[entry.index] = entry.payload
            if case .configChange(let change) = entry.payload {
                decidedChanges.append((entry.index, change))
                decidedChanges.sort { $0.slot < $1.slot }
            }
            var advanced = false
            while decided[decidedThrough + 1] != nil {
                decidedThrough = decidedThrough + 1
                advanced = true
            }
            if advanced {
                for key in deferred.sorted(by: { ($0.slot, $0.round) < ($1.slot, $1.round) }) { try count(key) }
            }
        }
    }

    private func checkProposed(_ value: Entry.Payload, at slot: LogIndex) throws(SafetyViolation) {
        switch value {
        case .noop: return
        case .command(let bytes):
            if proposed.contains(bytes) { return }
            throw SafetyViolation(.onlyProposedChosen, "slot \(slot) holds a command no one proposed")
        case .configChange(let change):
            if slot == 1, case .bootstrap = change.kind { return }
            if proposedChanges.contains(change) { return }
            throw SafetyViolation(.onlyProposedChosen, "slot \(slot) holds a configuration change no one proposed: \(change)")
        }
    }
}
