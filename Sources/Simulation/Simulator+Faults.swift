import Consensus
import Engines
import Raft

extension Simulator {
    func every(_ period: Int) -> Bool {
        period > 0 && Int.random(in: 0..<period, using: &random) == 0
    }

    var upNodes: [Int] { nodes.indices.filter { nodes[$0].status == .up } }

    var leaderIndex: Int? {
        upNodes.filter { nodes[$0].core.role == .leader }.max { nodes[$0].core.term < nodes[$1].core.term }
    }

    func injectFaults() {
        let f = options.faults
        if every(crashEvery) {
            // Leaders die more often than their share: their death is what
            // elections, handovers and log repair are for.
            if random.chance(percent: 50), let l = leaderIndex { crash(l) } else if let i = upNodes.randomElement(using: &random) { crash(i) }
        }
        for (id, at) in crashAt.sorted(by: { $0.key < $1.key }) where at <= now {
            crashAt[id] = nil
            if let i = nodeIndex[id], nodes[i].status == .up { crash(i) }
        }
        for (id, at) in restartAt.sorted(by: { $0.key < $1.key }) where at <= now { restart(id) }
        if let heal = healAt, heal <= now { healNetwork() }
        if healAt == nil, every(partitionEvery) {
            let live = nodes.indices.filter { nodes[$0].status != .removed }.map { nodes[$0].id }
            let shuffled = live.shuffled(using: &random)
            let cutAt = Int.random(in: 1..<max(2, shuffled.count), using: &random)
            let side = Set(shuffled.prefix(cutAt))
            let oneWay = f.contains(.oneWay) && (!f.contains(.partition) || random.chance(percent: 50))
            for a in live where side.contains(a) {
                for b in live where !side.contains(b) {
                    network.cut.insert(.init(from: .node(a), to: .node(b)))
                    if !oneWay { network.cut.insert(.init(from: .node(b), to: .node(a))) }
                }
            }
            healAt = now + UInt64.random(in: 1...UInt64(partitionLengthMax), using: &random)
            stats.partitions += 1
            trace.note(now, "partition \(side.sorted()) \(oneWay ? "-/->" : "|") rest until \(healAt!)")
        }
        if every(membershipEvery) { changeMembership() }
        if every(transferEvery), let l = leaderIndex {
            let voters = nodes[l].core.membership.voters.subtracting([nodes[l].id]).sorted()
            if let target = voters.randomElement(using: &random) {
                if (try? nodes[l].core.transferLeadership(to: target)) != nil {
                    stats.transfers += 1
                    trace.note(now, "n\(nodes[l].id) transfers leadership to n\(target)")
                }
            }
        }
        retireRemovedNodes()
    }

    /// Cut a leader's messages to a random part of its followers.
    func muffle(_ i: Int) {
        let peers = nodes.filter { $0.status != .removed && $0.id != nodes[i].id }.map(\.id)
        guard peers.count > 1 else { return }
        // Mostly leave it reaching less than a quorum, so its entries stay
        // uncommitted on a minority while others move on.
        let reachable = random.chance(percent: 75) ? Int.random(in: 0...max(0, peers.count / 2 - 1), using: &random)
            : Int.random(in: 1..<peers.count, using: &random)
        let deaf = peers.shuffled(using: &random).prefix(peers.count - reachable)
        for peer in deaf { network.cut.insert(.init(from: .node(nodes[i].id), to: .node(peer))) }
        healAt = now + UInt64.random(in: 5...UInt64(max(5, partitionLengthMax)), using: &random)
        stats.partitions += 1
        trace.note(now, "n\(nodes[i].id) -/-> \(deaf.sorted()) until \(healAt!)")
    }

    func healNetwork() {
        network.cut.removeAll()
        healAt = nil
        trace.note(now, "network heals")
    }

    func crash(_ i: Int) {
        let tear = tearWrites && random.chance(percent: 50)
        nodes[i].crash(tear: tear, random: &random)
        // What a torn write kept stays in the disk's newly durable entries:
        // counted as acceptances after the restart's first completed Ready.
        checker.forget(nodes[i].id)
        paxosChecker.forget(nodes[i].id)
        restartAt[nodes[i].id] = now + UInt64.random(in: 1...UInt64(restartAfterMax), using: &random)
        stats.crashes += 1
        trace.note(now, "n\(nodes[i].id) crashes\(tear ? " (torn write)" : "")")
    }

    func restart(_ id: NodeID) {
        restartAt[id] = nil
        guard let i = nodeIndex[id], nodes[i].status == .down else { return }
        let disk = nodes[i].disk
        nodes[i].restarts += 1
        nodes[i].start(restartCore(i), bug: options.injectedReplicaBug)
        nodes[i].nextTickAt = now + 1
        trace.note(now, "n\(id) restarts: \(disk.durableState.hardState), \(disk.durableState.entries.count) entries")
    }

    /// The core member `i` restarts with: what its disk kept; or, for a
    /// founder that crashed before its bootstrap reached the disk, the
    /// bootstrap again, as the server does on an empty log with
    /// `--initial-cluster-state new` (it promised nothing before that sync).
    func restartCore(_ i: Int) -> AnyEngine {
        let state = nodes[i].disk.durableState
        let id = nodes[i].id
        let seed = options.seed &+ nodes[i].restarts
        if state == .empty && founders.contains(id) {
            return makeEngine(id, bootstrap: Membership(voters: founders), seed: seed)
        }
        return makeEngine(id, state: state, seed: seed)
    }

    /// The members the cluster was bootstrapped with.
    var founders: Set<NodeID> { Set((1...UInt64(options.nodes)).map { NodeID($0) }) }

    /// An operator at work: add a learner, promote it, remove a voter.
    func changeMembership() {
        guard let l = leaderIndex else { return }
        let core = nodes[l].core
        let membership = core.membership
        guard !membership.isJoint else { return }
        let change: ConfigChange.Step
        var newNode: NodeID?
        if let learner = membership.learners.sorted().first {
            if let raft = core.raft {
                guard let state = raft.replicationState(of: learner), state.match >= core.commitIndex else { return }
            } else {
                // A Paxos learner is caught up once it applied what the leader committed.
                guard let n = nodes.firstIndex(where: { $0.id == learner }), nodes[n].status == .up,
                    nodes[n].machine.appliedIndex >= core.commitIndex
                else { return }
            }
            change = .promoteLearner(learner)
        } else if membership.voters.count > options.nodes
            || (membership.voters.count == options.nodes && options.nodes > 1 && random.chance(percent: 50))
        {
            change = .removeVoter(membership.voters.sorted().randomElement(using: &random)!)
        } else {
            // Usually the safe way in (learner first, promoted once caught
            // up), sometimes straight in as a voter, as operators also do.
            let id = NodeID(nextNodeID)
            change = random.chance(percent: 70) ? .addLearner(id) : .addVoter(id)
            newNode = id
        }
        do {
            try nodes[l].core.proposeConfigChange(ConfigChange(kind: .change, changes: [change]))
        } catch {
            return
        }
        if options.engine == .paxos { paxosChecker.noteProposed(ConfigChange(kind: .change, changes: [change])) }
        if let id = newNode {
            nextNodeID += 1
            addNode(id, core: makeEngine(id, seed: options.seed))
            joining.insert(id)
        }
        stats.membershipChanges += 1
        trace.note(now, "n\(nodes[l].id) proposes \(change)")
    }

    /// Stop members the committed configuration no longer contains.
    func retireRemovedNodes() {
        guard let l = leaderIndex else { return }
        let leader = nodes[l].core
        // Only a leader that committed in its own term knows the committed
        // configuration: one that lost its commit index (a torn write at
        // bootstrap) holds none yet, which does not mean nobody is a member.
        guard knowsCommitted(leader) else { return }
        let membership = leader.membership
        guard !membership.isJoint else { return }
        let members = membership.allMembers
        joining.subtract(members)
        for i in nodes.indices where nodes[i].status != .removed {
            let id = nodes[i].id
            if !members.contains(id) && !joining.contains(id) {
                nodes[i].crash(tear: false, random: &random)
                nodes[i].status = .removed
                checker.forget(id)
                restartAt[id] = nil
                trace.note(now, "n\(id) retired: not in \(membership)")
            }
        }
    }

    /// Heal everything, then require progress within a bounded time.
    func livenessPhase() throws(SafetyViolation) {
        faultsOn = false
        crashAt.removeAll()
        healNetwork()
        network.dropPercent = 0
        network.longDelayPercent = 0
        for (id, _) in restartAt.sorted(by: { $0.key < $1.key }) { restart(id) }
        trace.note(now, "liveness phase begins")
        let start = now
        while now - start < UInt64(options.livenessStepsMax) {
            try step()
            if converged() {
                stats.livenessSteps = Int(now - start)
                try checkConvergence()
                return
            }
        }
        stats.livenessSteps = Int(now - start)
        let pending = clients.filter { $0.outstanding != nil }.count
        let leader = leaderIndex.map { l in
            let core = nodes[l].core
            if let raft = core.raft {
                return "n\(raft.id) in term \(raft.term) (last \(raft.lastTerm)/\(raft.lastIndex), \(raft.membership), pending change at \(raft.pendingConfigurationIndex))"
            }
            return "n\(core.id) in round \(core.term) (last slot \(core.lastIndex), commit \(core.commitIndex), \(core.membership))"
        } ?? "none"
        throw SafetyViolation(.liveness, "\(options.livenessStepsMax) steps after healing: leader \(leader), \(pending) client operations pending, "
            + upNodes.map { "n\(nodes[$0].id) \(nodes[$0].core.role) t\(nodes[$0].core.term) commit=\(nodes[$0].core.commitIndex) applied=\(nodes[$0].machine.appliedIndex)" }.joined(separator: "; "))
    }

    /// Whether a leader's commit index covers everything chosen: a Raft
    /// leader once it committed an entry of its own term; a Paxos leader
    /// once no slot it opened or recovered is still open.
    func knowsCommitted(_ leader: AnyEngine) -> Bool {
        if let raft = leader.raft { return raft.term(at: raft.commitIndex) == raft.term }
        return leader.commitIndex == leader.lastIndex
    }

    func converged() -> Bool {
        guard clients.allSatisfy({ $0.outstanding == nil }), let l = leaderIndex else { return false }
        let leader = nodes[l].core
        guard knowsCommitted(leader), !leader.membership.isJoint else { return false }
        let members = leader.membership.allMembers
        return upNodes.allSatisfy { i in
            !members.contains(nodes[i].id) || nodes[i].machine.appliedIndex == leader.commitIndex
        }
    }

    /// Every member that applied the same prefix holds the same state.
    func checkConvergence() throws(SafetyViolation) {
        let l = leaderIndex!
        let reference = nodes[l].machine.fingerprint
        for i in upNodes where nodes[l].core.membership.allMembers.contains(nodes[i].id) {
            if nodes[i].machine.fingerprint != reference {
                throw SafetyViolation(.convergence, "n\(nodes[i].id) and leader n\(nodes[l].id) applied through \(reference.index) but hold different states")
            }
        }
    }
}
