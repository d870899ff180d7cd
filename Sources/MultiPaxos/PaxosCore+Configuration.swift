import Consensus

/// Membership changes, Lamport's way ("Paxos Made Simple" §3): the
/// configuration entry chosen in slot `k` governs slots after `k + α`,
/// where α is the slot window. A leader opens slot `s` only while
/// `s - α` is at or below its commit index (the window), so it always knows
/// the configuration of every slot it proposes, from chosen slots alone.
/// Unlike Raft's single-server or joint changes, consecutive configurations
/// need not overlap: a new leader's phase 1 collects a quorum of every
/// configuration that may govern a slot it recovers (`requiredConfigurations`).
/// The founders' bootstrap entry in slot 1 governs from slot 2 on.
///
/// Why phase 1 is enough (the README's argument, in short): let `c` be the
/// candidate's commit index and `L` the last slot any promiser accepted a
/// value in. A value chosen in slot `s` was proposed by a leader that knew
/// slots through `s - α` chosen; take the lowest chosen slot `s* > c` that
/// no promiser reported. Slots below it that are chosen were reported, with
/// their chosen values (Paxos' phase-1 argument, slot by slot, given quorum
/// intersection below), so `s* - α` is at most `max(L, c)` and the
/// configuration of `s*` is one the candidate computed from what it holds.
/// Its promisers being a quorum of that configuration contradicts "no
/// promiser reported it". Hence promisers that form a quorum of the
/// configuration of every slot through `max(L, c) + α` see every chosen
/// value, and the leader re-proposes each.
extension PaxosCore {
    /// α: how many slots after its own a configuration entry takes effect.
    /// Every member of a group runs the same slot window.
    var configurationDelay: UInt64 { UInt64(settings.slotWindowMax) }

    /// A change applied Paxos' way: the α delay keeps decisions safe across
    /// configurations that do not overlap, so none is ever joint. A change
    /// that does not apply (validated against another configuration by a
    /// leader whose slot lost) is skipped, identically on every member.
    public static func applying(_ change: ConfigChange, to membership: Membership) -> Membership {
        guard case .success(var next) = change.applied(to: membership) else { return membership }
        next.outgoingVoters = []
        return next
    }

    /// Whether the entry in `slot` governs `target`: the founders' from the next slot, any other α slots later.
    func governs(_ change: ConfigChange, at slot: LogIndex, _ target: LogIndex) -> Bool {
        if case .bootstrap = change.kind { return slot < target }
        return slot.rawValue + configurationDelay < target.rawValue
    }

    /// The configuration whose quorums decide `slot`. It reads the log's
    /// configuration entries at or below `slot - α`: callers ask only where
    /// those are chosen (a leader's open slots lie within α of its commit).
    public func configuration(for slot: LogIndex) -> Membership {
        var result = log.snapshot.membership
        for k in log.configSlots {
            guard let change = log.configChange(at: k), governs(change, at: k, slot) else { break }
            result = Self.applying(change, to: result)
        }
        return result
    }

    /// The membership once every configuration entry through `index` took
    /// effect: what `member list` shows and a snapshot records. Quorums
    /// use `configuration(for:)`.
    public func membership(at index: LogIndex) -> Membership {
        var result = log.snapshot.membership
        for k in log.configSlots where k <= index {
            result = Self.applying(log.configChange(at: k)!, to: result)
        }
        return result
    }

    /// The configurations that decide the open slots and those a leader may
    /// open next: the one governing `commit + 1`, then one after each
    /// configuration entry in the log that does not govern it yet.
    var activeConfigurations: [Membership] {
        let next = log.committed + 1
        var current = configuration(for: next)
        var result = [current]
        for k in log.configSlots {
            let change = log.configChange(at: k)!
            if governs(change, at: k, next) { continue }
            current = Self.applying(change, to: current)
            if current != result.last { result.append(current) }
        }
        return result
    }

    /// Every member any active configuration names: whom this member hears
    /// and, leading, whom it sends slots to.
    var knownMembers: Set<NodeID> {
        activeConfigurations.reduce(membership.allMembers) { $0.union($1.allMembers) }
    }

    /// Whether `granted` holds a quorum of every configuration in
    /// `configurations`. A configuration without voters is one not known
    /// yet (a member that joined with nothing): no quorum of it exists.
    static func quorumOfEach(_ configurations: [Membership], _ granted: (NodeID) -> Bool) -> Bool {
        configurations.allSatisfy { !$0.voters.isEmpty && $0.tally { granted($0) ? true : nil } == .won }
    }

    /// The configurations a candidate's promisers must each hold a quorum
    /// of: that of its first open slot, then one after each configuration
    /// entry, chosen or recovered, that governs a slot through the last
    /// recovered one plus α.
    func requiredConfigurations(_ recovery: Recovery) -> [Membership] {
        let first = recovery.firstSlot
        var current = configuration(for: first)
        var result = [current]
        var changes: [(LogIndex, ConfigChange)] = []
        for k in log.configSlots where k < first {
            let change = log.configChange(at: k)!
            if !governs(change, at: k, first) { changes.append((k, change)) }
        }
        for (slot, entry) in recovery.values.sorted(by: { $0.key < $1.key }) {
            if case .configChange(let change) = entry.payload { changes.append((slot, change)) }
        }
        for (_, change) in changes {
            current = Self.applying(change, to: current)
            if current != result.last { result.append(current) }
        }
        return result
    }

    public mutating func proposeConfigChange(_ change: ConfigChange) throws(ProposeError) -> LogIndex {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        if let target = transferTarget { throw .transferInProgress(to: target) }
        // One change at a time: the previous one governs every slot this
        // leader may open before the next is proposed.
        if let last = log.configSlots.last, let pending = log.configChange(at: last),
            !governs(pending, at: last, log.lastIndex + 1)
        {
            throw .configChangePending(index: last)
        }
        guard case .change = change.kind else { throw .invalidConfigChange(.notJoint) }
        if case .failure(let error) = change.applied(to: membership(at: log.lastIndex)) { throw .invalidConfigChange(error) }
        return try open([.configChange(change)])
    }

    /// A leader whose commit index reached a configuration entry fills the
    /// α slots after it with no-ops, so the change takes effect now rather
    /// than after α client writes: as each commit makes room, up to half the
    /// window, so clients' proposals still find the other half open.
    mutating func openSlotsUntilChangesTakeEffect() {
        guard role == .leader, let last = log.configSlots.last, last <= log.committed,
            let change = log.configChange(at: last), !governs(change, at: last, log.lastIndex + 1)
        else { return }
        let effective = last + configurationDelay + 1
        let room = max(1, settings.slotWindowMax / 2) - Int(log.lastIndex.rawValue - log.committed.rawValue)
        let count = min(Int(effective.rawValue - log.lastIndex.rawValue) - 1, room)
        guard count > 0 else { return }
        _ = try? open(Array(repeating: .noop, count: count))
    }

    /// Indexes a snapshot must not be taken at: from a configuration entry's
    /// slot until the slot before the one it governs from. A snapshot
    /// records one membership for every slot after it; one taken inside
    /// such a range would make a member that installs it count the slots
    /// before the change governs in the new configuration.
    public var unsettledSnapshotIndexes: [ClosedRange<LogIndex>] {
        log.configSlots.compactMap { k in
            guard let change = log.configChange(at: k) else { return nil }
            if case .bootstrap = change.kind { return nil }
            return k...(k + configurationDelay)
        }
    }

    /// Leading: every slot through here is accepted by `peer` in this round
    /// (or known chosen there), as far as its answers said; nil for a
    /// member this leader does not send to. What a learner's promotion checks.
    public func acceptedThrough(of peer: NodeID) -> LogIndex? {
        guard role == .leader else { return nil }
        return peers[peer]?.through
    }

    /// Membership moved (a commit, a snapshot, a new leader's recovery):
    /// a leader sends to every member it now knows and stops sending to
    /// those no configuration names; one that no configuration counts as a
    /// voter any longer steps down, and the others elect among themselves.
    mutating func membershipMoved() {
        membership = membership(at: log.committed)
        guard role == .leader else { return }
        let active = activeConfigurations
        if !active.contains(where: { $0.isVoter(id) }) {
            becomeFollower(leader: nil)
            resetElectionTimer()
            return
        }
        let members = knownMembers.subtracting([id])
        for peer in peers.keys where !members.contains(peer) { peers[peer] = nil }
        for peer in members.sorted() where peers[peer] == nil {
            peers[peer] = PeerProgress(through: .zero, lastSlotAtPreviousHeartbeat: log.lastIndex)
            sendAccepts(from: log.committed + 1, through: log.lastIndex, to: peer, pagesMax: 1)
        }
    }
}
