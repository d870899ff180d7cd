import Consensus
import Raft

/// Checks the five Raft safety properties against the real cores, after
/// every simulation step. It keeps a global record of every (index, term)
/// ever seen in any log and of every decided (committed or applied) entry,
/// so a violation is caught the moment it appears, not when it is observed
/// by a client.
struct SafetyChecker: Sendable {
    private struct Seen: Sendable {
        var entry: Entry
        /// Term of the entry before it, nil when that one was compacted away.
        var previousTerm: Term?
    }

    private var leaderOfTerm: [Term: NodeID] = [:]
    /// registry[i] holds every distinct-term entry ever seen at index i.
    private var registry: [[Seen]] = [[]]
    /// decided[i]: the entry committed or applied at index i by anyone.
    private var decided: [Entry?] = [nil]
    private var verified: [NodeID: (index: LogIndex, term: Term)] = [:]
    private var seenCommit: [NodeID: LogIndex] = [:]
    private var leaderView: [NodeID: (term: Term, last: LogIndex, lastTerm: Term)] = [:]
    private(set) var leadersElected = 0

    var decidedCount: Int { decided.count - 1 }

    /// A crashed member restarts from disk: forget what we assumed of its memory.
    mutating func forget(_ id: NodeID) {
        verified[id] = nil
        seenCommit[id] = nil
        leaderView[id] = nil
    }

    mutating func observe(_ core: RaftCore) throws(SafetyViolation) {
        let id = core.id
        if core.role == .leader {
            if let other = leaderOfTerm[core.term], other != id {
                throw SafetyViolation(.electionSafety, "members \(other) and \(id) both lead term \(core.term)")
            }
            if leaderOfTerm[core.term] == nil {
                leaderOfTerm[core.term] = id
                leadersElected += 1
            }
            if let view = leaderView[id], view.term == core.term {
                if core.lastIndex < view.last {
                    throw SafetyViolation(.leaderAppendOnly, "leader \(id) of term \(core.term) shrank its log from \(view.last) to \(core.lastIndex)")
                }
                if let t = core.term(at: view.last), t != view.lastTerm {
                    throw SafetyViolation(.leaderAppendOnly, "leader \(id) of term \(core.term) rewrote index \(view.last): term \(view.lastTerm) became \(t)")
                }
            } else {
                try checkCompleteness(core)
            }
            leaderView[id] = (core.term, core.lastIndex, core.lastTerm)
        } else {
            leaderView[id] = nil
        }
        try checkLogMatching(core)
        try checkCommitted(core)
    }

    /// Every entry committed so far is in the new leader's log (Raft §5.4).
    private mutating func checkCompleteness(_ core: RaftCore) throws(SafetyViolation) {
        let top = LogIndex(UInt64(decided.count - 1))
        if top > core.lastIndex {
            throw SafetyViolation(.leaderCompleteness, "leader \(core.id) of term \(core.term) has log through \(core.lastIndex) but \(top) is committed")
        }
        var i = max(core.firstIndex, 1)
        while i <= top {
            if let want = decided[Int(i.rawValue)], core.entry(at: i) != want {
                throw SafetyViolation(.leaderCompleteness, "leader \(core.id) of term \(core.term) has \(core.entry(at: i).map(\.description) ?? "nothing") at \(i) where \(want) was committed")
            }
            i = i + 1
        }
    }

    /// Two logs with an entry of the same index and term agree on that entry
    /// and on everything before it. Checked inductively: same (index, term)
    /// implies same entry and same previous term.
    private mutating func checkLogMatching(_ core: RaftCore) throws(SafetyViolation) {
        let id = core.id
        var from = core.firstIndex
        if let v = verified[id] {
            if v.index <= core.lastIndex, let t = core.term(at: v.index), t == v.term {
                from = max(from, v.index + 1)
            } else {
                from = max(from, min(core.commitIndex, v.index) + 1)
            }
        }
        var i = from
        while i <= core.lastIndex {
            let entry = core.entry(at: i)!
            let previousTerm = core.term(at: i - 1)
            let slot = Int(i.rawValue)
            while registry.count <= slot { registry.append([]) }
            if let seen = registry[slot].first(where: { $0.entry.term == entry.term }) {
                if seen.entry != entry {
                    throw SafetyViolation(.logMatching, "member \(id) has \(entry) where another log has \(seen.entry)")
                }
                if let a = seen.previousTerm, let b = previousTerm, a != b {
                    throw SafetyViolation(.logMatching, "member \(id) has \(entry) after term \(b) at \(i - 1); another log has it after term \(a)")
                }
            } else {
                registry[slot].append(Seen(entry: entry, previousTerm: previousTerm))
            }
            i = i + 1
        }
        verified[id] = (core.lastIndex, core.lastTerm)
    }

    private mutating func checkCommitted(_ core: RaftCore) throws(SafetyViolation) {
        let id = core.id
        let before = seenCommit[id] ?? core.snapshotMetadata.index
        var i = max(before + 1, core.firstIndex)
        while i <= core.commitIndex {
            try decide(core.entry(at: i)!, by: id, how: "committed")
            i = i + 1
        }
        seenCommit[id] = core.commitIndex
    }

    /// What the electability check needs of one member's log.
    struct LogSummary {
        var id: NodeID
        var lastIndex: LogIndex
        var lastTerm: Term
        var snapshotIndex: LogIndex
        var entryAt: (LogIndex) -> Entry?

        init(_ core: RaftCore) {
            id = core.id
            lastIndex = core.lastIndex
            lastTerm = core.lastTerm
            snapshotIndex = core.snapshotMetadata.index
            entryAt = { core.entry(at: $0) }
        }

        /// A member that is down, as it will restart: from its disk.
        init(id: NodeID, disk: DurableState) {
            self.id = id
            let base = disk.snapshot?.index ?? .zero
            snapshotIndex = base
            lastIndex = base + UInt64(disk.entries.count)
            lastTerm = disk.entries.last?.term ?? disk.snapshot?.term ?? .zero
            let entries = disk.entries
            entryAt = { i in i > base && i <= base + UInt64(entries.count) ? entries[Int(i.rawValue - base.rawValue - 1)] : nil }
        }
    }

    /// The inductive core of Leader Completeness (Raft §5.4.3), checked at
    /// every step instead of waiting for an election to reveal a loss: a
    /// member whose log lacks a committed entry must never be electable,
    /// i.e. a majority of `voters` must never find its log at least as up
    /// to date as theirs. This holds on logs alone in correct Raft: a log
    /// that beats a log holding a committed entry must hold that entry too.
    mutating func checkElectability(_ logs: [LogSummary], voters: Set<NodeID>) throws(SafetyViolation) {
        let top = decided.count - 1
        guard top > 0, let want = decided[top] else { return }
        let electorate = logs.filter { voters.contains($0.id) }
        for x in electorate {
            let holds = x.snapshotIndex >= want.index || x.entryAt(want.index) == want
            if holds { continue }
            let grants = electorate.filter { v in
                x.lastTerm > v.lastTerm || (x.lastTerm == v.lastTerm && x.lastIndex >= v.lastIndex)
            }
            if grants.count > voters.count / 2 {
                throw SafetyViolation(.leaderCompleteness,
                    "member \(x.id) (last \(x.lastTerm)/\(x.lastIndex)) lacks committed \(want) yet members "
                    + "\(grants.map(\.id).sorted()) of \(voters.sorted()) would elect it")
            }
        }
    }

    /// A member applied `entry`: no member may ever apply another at its index.
    mutating func observeApply(_ entry: Entry, by id: NodeID) throws(SafetyViolation) {
        try decide(entry, by: id, how: "applied")
    }

    private mutating func decide(_ entry: Entry, by id: NodeID, how: String) throws(SafetyViolation) {
        let slot = Int(entry.index.rawValue)
        while decided.count <= slot { decided.append(nil) }
        if let existing = decided[slot] {
            if existing != entry {
                throw SafetyViolation(.stateMachineSafety, "member \(id) \(how) \(entry) where \(existing) was decided")
            }
        } else {
            decided[slot] = entry
        }
    }
}
