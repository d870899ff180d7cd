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

    var decidedCount: Int { decided.count }

    /// A crashed member restarts from disk: forget what we assumed of its memory.
    mutating func forget(_ id: NodeID) { seenCommit[id] = nil }

    mutating func noteProposed(_ command: [UInt8]) { proposed.insert(command) }

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
    mutating func observeDurable(_ entries: [Entry], by id: NodeID, voters: Set<NodeID>) throws(SafetyViolation) {
        for entry in entries where entry.term > .zero {
            let key = SlotRound(slot: entry.index, round: entry.term)
            var record = acceptances[key] ?? Acceptance(value: entry.payload, acceptors: [])
            if record.value != entry.payload {
                throw SafetyViolation(.chosenOnce, "slot \(entry.index) round \(entry.term): n\(id) accepted \(entry.payload), another member \(record.value)")
            }
            record.acceptors.insert(id)
            acceptances[key] = record
            guard record.acceptors.intersection(voters).count > voters.count / 2 else { continue }
            if let earlier = chosen[entry.index] {
                if earlier != record.value {
                    throw SafetyViolation(.chosenOnce, "slot \(entry.index): \(record.value) chosen in round \(entry.term), \(earlier) chosen before")
                }
            } else {
                try checkProposed(record.value, at: entry.index)
                chosen[entry.index] = record.value
            }
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
            throw SafetyViolation(.onlyProposedChosen, "slot \(slot) holds a configuration change no one proposed: \(change)")
        }
    }
}
