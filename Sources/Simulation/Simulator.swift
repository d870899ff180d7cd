import Consensus
import Engines
@_spi(BugInjection) import MultiPaxos
@_spi(BugInjection) import Raft
@_spi(BugInjection) import Replica

/// A deterministic cluster simulator in the style of FoundationDB's and
/// TigerBeetle's: one seed draws every fault rate and every event; the real
/// consensus core (Raft or Multi-Paxos, `SimulationOptions.engine`) and the
/// real state machine run over a simulated network, disk and clocks;
/// safety is checked after every step, then a liveness phase heals
/// everything and the client history is checked for linearizability.
public final class Simulator {
    let options: SimulationOptions
    var random: DeterministicRandom
    var settings = RaftSettings()
    var paxosSettings = PaxosSettings()
    var network = SimNetwork()
    var nodes: [SimNode] = []
    var nodeIndex: [NodeID: Int] = [:]
    var clients: [SimClient] = []
    var history: [HistoryOperation] = []
    var checker = SafetyChecker()
    var paxosChecker = PaxosSafetyChecker()
    var trace: TraceRing
    var stats = SimulationReport.Stats()
    var now: UInt64 = 0
    var faultsOn = true
    var nextNodeID: UInt64
    var nextReadContext: UInt64 = 1
    var keys: [String] = []
    var parameters: [String] = []

    // Drawn fault schedule, in steps between events (0 = never).
    var crashEvery = 0
    var restartAfterMax = 0
    var tearWrites = false
    var partitionEvery = 0
    var partitionLengthMax = 0
    var healAt: UInt64?
    var membershipEvery = 0
    var transferEvery = 0
    var compactAfterEntries = 0
    var diskLatencyMax: UInt64 = 0
    /// Chance that a member crashes a few steps after winning an election:
    /// a targeted fault ("buggify") for the paths that only a leader
    /// dying mid-handover exercises (Raft Figure 8).
    var crashNewLeaderPercent = 0.0
    /// Chance that a member crashes while a Ready's writes wait for their
    /// fsync: the window in which a shell that promised too early (sent a
    /// vote or an acknowledgement before the write was durable) is caught.
    var crashBeforeSyncPercent = 0.0
    /// Chance that a new leader's messages reach only some followers for a
    /// while: the generator of diverging logs (Raft Figure 7 and 8).
    var muffleNewLeaderPercent = 0.0
    var clientTimeout: UInt64 = 150
    var restartAt: [NodeID: UInt64] = [:]
    var crashAt: [NodeID: UInt64] = [:]
    var joining: Set<NodeID> = []

    public static func run(_ options: SimulationOptions) -> SimulationReport {
        let simulator = Simulator(options: options)
        return simulator.run()
    }

    init(options: SimulationOptions) {
        self.options = options
        self.random = DeterministicRandom(seed: options.seed)
        self.trace = TraceRing(capacity: options.traceLength)
        self.nextNodeID = UInt64(options.nodes) + 1
        drawParameters()
        let founders = Set((1...UInt64(options.nodes)).map { NodeID($0) })
        for id in founders.sorted() {
            addNode(id, core: makeEngine(id, bootstrap: Membership(voters: founders), seed: options.seed))
        }
        for c in 0..<Int.random(in: 2...6, using: &random) {
            clients.append(SimClient(id: c, target: founders.sorted().randomElement(using: &random)!, nextActionAt: UInt64.random(in: 0...50, using: &random)))
        }
    }

    /// A member's core: bootstrapped, or restarted from `state`.
    func makeEngine(_ id: NodeID, bootstrap: Membership? = nil, state: DurableState = .empty, seed: UInt64) -> AnyEngine {
        do {
            switch options.engine {
            case .raft:
                if let bootstrap { return AnyEngine(try RaftCore(id: id, bootstrap: bootstrap, settings: settings, seed: seed)) }
                return AnyEngine(try RaftCore(id: id, settings: settings, seed: seed, state: state))
            case .paxos:
                if let bootstrap { return AnyEngine(try PaxosCore(id: id, bootstrap: bootstrap, settings: paxosSettings, seed: seed)) }
                return AnyEngine(try PaxosCore(id: id, settings: paxosSettings, seed: seed, state: state))
            }
        } catch {
            preconditionFailure("drawn settings are valid: \(error)")
        }
    }

    var leaseReads: Bool {
        options.engine == .raft ? settings.readMode == .leaseBased : paxosSettings.readMode == .leaseBased
    }

    func addNode(_ id: NodeID, core: AnyEngine) {
        var period = SimulationOptions.tickPeriodNominal
        if options.faults.contains(.skew) {
            // Lease reads are promised safe only within the drift bound; other
            // runs get wilder clocks.
            period = leaseReads
                ? UInt64.random(in: 10...11, using: &random)
                : UInt64.random(in: 7...14, using: &random)
        }
        nodeIndex[id] = nodes.count
        nodes.append(SimNode(id: id, core: core, tickPeriod: period, firstTick: UInt64.random(in: 1...period, using: &random),
                             bug: options.injectedReplicaBug, stateMachineBug: options.injectedStateMachineBug))
    }

    func drawParameters() {
        let f = options.faults
        settings.electionTicks = 10
        settings.heartbeatTicks = Int.random(in: 1...3, using: &random)
        // 1 byte still sends one entry per message: the tail of an old term then
        // arrives apart from the new leader's no-op, the path Raft §5.4.2 is about.
        settings.appendBytesMax = [1, 1, 64, 256, 4096, 1 << 20].randomElement(using: &random)!
        settings.inflightMessagesMax = [1, 4, 64].randomElement(using: &random)!
        if random.chance(percent: 25) { settings.readMode = .leaseBased }
        settings.injectedBug = options.injectedBug
        if f.contains(.drop) { network.dropPercent = Double.random(in: 0...10, using: &random) }
        if f.contains(.duplicate) { network.duplicatePercent = Double.random(in: 0...5, using: &random) }
        if f.contains(.reorder) { network.delayMax = UInt64.random(in: 2...12, using: &random) }
        if f.contains(.delay) {
            network.longDelayPercent = Double.random(in: 0...3, using: &random)
            network.longDelayMax = UInt64.random(in: 20...300, using: &random)
        }
        if f.contains(.crash) {
            crashEvery = Int.random(in: 200...1500, using: &random)
            restartAfterMax = Int.random(in: 20...600, using: &random)
            diskLatencyMax = UInt64.random(in: 0...5, using: &random)
            crashNewLeaderPercent = Double.random(in: 0...60, using: &random)
            crashBeforeSyncPercent = Double.random(in: 0...10, using: &random)
        }
        tearWrites = f.contains(.tornWrite) && random.chance(percent: 70)
        if f.contains(.partition) || f.contains(.oneWay) {
            partitionEvery = Int.random(in: 150...1200, using: &random)
            partitionLengthMax = Int.random(in: 30...800, using: &random)
            muffleNewLeaderPercent = [0, 25, 50, 80, 95].randomElement(using: &random)!
        }
        if f.contains(.membership) { membershipEvery = Int.random(in: 200...1000, using: &random) }
        if f.contains(.transfer) { transferEvery = Int.random(in: 200...1000, using: &random) }
        if f.contains(.compaction) { compactAfterEntries = Int.random(in: 5...120, using: &random) }
        if options.engine == .paxos { drawPaxosSettings() }
        // Few keys most of the time: contention is what exposes stale reads.
        keys = (0..<[1, 1, 2, 2, 3, 4].randomElement(using: &random)!).map { "k\($0)" }
        parameters = [
            "seed=\(options.seed) nodes=\(options.nodes) steps=\(options.steps) faults=\(f)",
            "drop=\(Int(network.dropPercent))% dup=\(Int(network.duplicatePercent))% delay=1...\(network.delayMax)"
                + " long-delay=\(Int(network.longDelayPercent))%/\(network.longDelayMax)",
            "crash-every=\(crashEvery) crash-new-leader=\(Int(crashNewLeaderPercent))% crash-before-sync=\(Int(crashBeforeSyncPercent))% restart-after<=\(restartAfterMax) torn=\(tearWrites) disk-latency<=\(diskLatencyMax)"
                + " partition-every=\(partitionEvery) length<=\(partitionLengthMax) muffle-new-leader=\(Int(muffleNewLeaderPercent))%",
            "membership-every=\(membershipEvery) transfer-every=\(transferEvery) compact-after=\(compactAfterEntries)"
                + (options.engine == .raft
                    ? " heartbeat=\(settings.heartbeatTicks) append-bytes=\(settings.appendBytesMax)"
                        + " window=\(settings.inflightMessagesMax) read-mode=\(settings.readMode)"
                    : " engine=paxos heartbeat=\(paxosSettings.heartbeatTicks) accept-bytes=\(paxosSettings.acceptBytesMax)"
                        + " slot-window=\(paxosSettings.slotWindowMax) promise-page=\(paxosSettings.promiseEntriesMax) read-mode=\(paxosSettings.readMode)")
                + " keys=\(keys.count)"
                + (options.injectedBug.map { " injected-bug=\($0.rawValue)" } ?? "")
                + (options.injectedReplicaBug.map { " injected-bug=\($0.rawValue)" } ?? "")
                + (options.injectedStateMachineBug.map { " injected-bug=\($0.rawValue)" } ?? "")
                + (options.injectedPaxosBug.map { " injected-bug=\($0.rawValue)" } ?? ""),
        ]
    }

    /// The Multi-Paxos core's settings, drawn after the rest so a Raft
    /// seed's draws stay as they were.
    func drawPaxosSettings() {
        paxosSettings.electionTicks = settings.electionTicks
        paxosSettings.heartbeatTicks = settings.heartbeatTicks
        paxosSettings.readMode = settings.readMode == .leaseBased ? .leaseBased : .readIndex
        // Small windows and pages: a full window refuses proposals, and a
        // new leader's phase 1 reads long logs a page at a time.
        paxosSettings.slotWindowMax = [4, 16, 64, PaxosSettings.slotWindowMaxDefault].randomElement(using: &random)!
        // A membership change takes effect a window later, and the leader
        // fills that window with no-ops: runs that change membership use
        // the small windows, so a run stays a few thousand slots long.
        if membershipEvery > 0 { paxosSettings.slotWindowMax = min(paxosSettings.slotWindowMax, 64) }
        paxosSettings.acceptBytesMax = max(1, settings.appendBytesMax)
        paxosSettings.promiseEntriesMax = [1, 3, 16, PaxosSettings.promiseEntriesMaxDefault].randomElement(using: &random)!
        paxosSettings.injectedBug = options.injectedPaxosBug
        paxosChecker.configurationDelay = UInt64(paxosSettings.slotWindowMax)
    }

    // MARK: The run

    func run() -> SimulationReport {
        var violation: SafetyViolation?
        do {
            for _ in 0..<options.steps {
                try step()
            }
            stats.stepsRun = options.steps
            try livenessPhase()
            try checkLinearizability()
        } catch {
            violation = error
        }
        stats.leadersElected = options.engine == .raft ? checker.leadersElected : paxosChecker.leadersElected
        stats.messagesSent = network.sent
        stats.messagesDropped = network.dropped
        stats.entriesCommitted = options.engine == .raft ? checker.decidedCount : paxosChecker.decidedCount
        stats.writesLost = nodes.map(\.disk.writesLost).reduce(0, +)
        stats.operationsCompleted = history.filter { $0.response != nil }.count
        stats.operationsPending = history.count - stats.operationsCompleted
        return SimulationReport(
            seed: options.seed, violation: violation, parameters: parameters.joined(separator: "\n"),
            trace: violation == nil && !options.keepTrace ? [] : trace.lines, stats: stats)
    }

    /// One unit of simulated time.
    func step() throws(SafetyViolation) {
        now += 1
        if faultsOn { injectFaults() }
        var dirty = Set<Int>()
        while let packet = network.nextDue(now: now) {
            if let i = deliver(packet) { dirty.insert(i) }
        }
        for i in nodes.indices where nodes[i].status == .up && nodes[i].nextTickAt <= now {
            nodes[i].nextTickAt = now + nodes[i].tickPeriod
            nodes[i].core.tick()
            dirty.insert(i)
        }
        for i in nodes.indices where nodes[i].status == .up {
            if let completesAt = nodes[i].syncCompletesAt, completesAt <= now {
                try complete(i)
                dirty.insert(i)
            }
        }
        for i in dirty.sorted() { try drive(i) }
        if network.overflowed {
            throw SafetyViolation(.liveness, "message storm: \(SimNetwork.inFlightMax) packets in flight")
        }
        if options.engine == .raft, !dirty.isEmpty, let l = leaderIndex, !nodes[l].core.membership.isJoint {
            let logs = nodes.indices.map { i in
                let node = nodes[i]
                if let replica = node.replica { return SafetyChecker.LogSummary(replica.engine.raft!) }
                // A founder that never synced its bootstrap restarts by bootstrapping again.
                if node.status == .down && node.disk.durableState == .empty && founders.contains(node.id) {
                    return SafetyChecker.LogSummary(restartCore(i).raft!)
                }
                return SafetyChecker.LogSummary(id: node.id, disk: node.disk.durableState)
            }
            try checker.checkElectability(logs, voters: nodes[l].core.membership.voters)
        }
        tickClients()
    }

    /// Run the member's Readies through its replica driver until the core
    /// has nothing more to say or a Ready waits for its disk.
    func drive(_ i: Int) throws(SafetyViolation) {
        var rounds = 0
        while nodes[i].status == .up, nodes[i].running.canStart {
            rounds += 1
            precondition(rounds < 10_000, "member \(nodes[i].id) produces Readies without end")
            let ready = nodes[i].running.start()!
            sendOutbox(i)
            let latency = ready.mustSync && diskLatencyMax > 0 ? UInt64.random(in: 0...diskLatencyMax, using: &random) : 0
            nodes[i].syncCompletesAt = now + latency
            if latency == 0 {
                try complete(i)
            } else if faultsOn, random.chance(percent: crashBeforeSyncPercent) {
                // Down before the disk answers (faults run before completions in a step).
                crashAt[nodes[i].id] = now + UInt64.random(in: 1...latency, using: &random)
            }
        }
        if nodes[i].status == .up {
            let core = nodes[i].core
            if let raft = core.raft { try checker.observe(raft) }
            if let paxos = core.paxos { try paxosChecker.observe(paxos) }
            core.checkInvariants()
        }
    }

    /// The disk finished: the driver sends what waited for it, applies and
    /// advances; then check what was applied and answer the clients.
    func complete(_ i: Int) throws(SafetyViolation) {
        guard nodes[i].syncCompletesAt != nil else { return }
        nodes[i].syncCompletesAt = nil
        let ready = nodes[i].running.finish()
        try observeDurable(i)
        sendOutbox(i)
        if let snapshot = ready.snapshot {
            stats.snapshotsInstalled += 1
            trace.note(now, "n\(nodes[i].id) installs \(snapshot)")
        }
        let applied = nodes[i].running.machine.applied
        nodes[i].running.machine.applied = []
        for (entry, outcome) in applied {
            if options.engine == .raft {
                try checker.observeApply(entry, by: nodes[i].id)
            } else {
                try paxosChecker.observeApply(entry, by: nodes[i].id)
            }
            if let (command, result) = outcome {
                let key = SimNode.ClientKey(client: command.client, sequence: command.sequence)
                if let client = nodes[i].pendingWrites.removeValue(forKey: key) {
                    respond(from: i, to: client, sequence: command.sequence, .done(result))
                }
            }
        }
        let confirmed = nodes[i].running.machine.confirmed
        nodes[i].running.machine.confirmed = []
        for read in confirmed {
            if let request = nodes[i].pendingReads.removeValue(forKey: read.context) {
                nodes[i].confirmedReads.append((read.index, request))
            }
        }
        serveConfirmedReads(i)
        failReadsOnLeadershipChange(i)
        noticeRoleChange(i)
        maybeCompact(i)
    }

    /// A Paxos acceptor's writes reached its disk: each entry is an
    /// acceptance, and a quorum of them chooses a value.
    func observeDurable(_ i: Int) throws(SafetyViolation) {
        let entries = nodes[i].takeNewlyDurable()
        guard options.engine == .paxos, !entries.isEmpty else { return }
        try paxosChecker.observeDurable(entries, by: nodes[i].id)
    }

    /// Put what the member's replica sent on the network.
    func sendOutbox(_ i: Int) {
        let messages = nodes[i].running.transport.messages
        nodes[i].running.transport.messages = []
        for message in messages { sendRaft(message, from: i) }
    }

    func serveConfirmedReads(_ i: Int) {
        let applied = nodes[i].machine.appliedIndex
        var waiting: [(index: LogIndex, request: ClientRequest)] = []
        for (index, request) in nodes[i].confirmedReads {
            if index <= applied, case .get(let key) = request.operation {
                respond(from: i, to: request.client, sequence: request.sequence, .done(.value(nodes[i].machine.read(key))))
            } else {
                waiting.append((index, request))
            }
        }
        nodes[i].confirmedReads = waiting
    }

    func noticeRoleChange(_ i: Int) {
        let role = nodes[i].core.role
        defer { nodes[i].lastRole = role }
        guard role != nodes[i].lastRole else { return }
        trace.note(now, "n\(nodes[i].id) becomes \(role) in term \(nodes[i].core.term)")
        if role == .leader, faultsOn, random.chance(percent: crashNewLeaderPercent) {
            crashAt[nodes[i].id] = now + UInt64.random(in: 1...30, using: &random)
        }
        if role == .leader, faultsOn, healAt == nil, random.chance(percent: muffleNewLeaderPercent) {
            muffle(i)
        }
    }

    /// Reads waiting for their index are answered "not leader" once the
    /// member's role, term or leader changed: the core forgot them (a
    /// deposed leader's unconfirmed reads, a follower's forwarded ones).
    func failReadsOnLeadershipChange(_ i: Int) {
        let core = nodes[i].core
        defer {
            nodes[i].lastTerm = core.term
            nodes[i].lastLeader = core.leader
        }
        guard core.role != nodes[i].lastRole || core.term != nodes[i].lastTerm || core.leader != nodes[i].lastLeader else { return }
        for (_, request) in nodes[i].pendingReads.sorted(by: { $0.key < $1.key }) {
            respond(from: i, to: request.client, sequence: request.sequence, .notLeader(hint: core.leader))
        }
        nodes[i].pendingReads = [:]
    }

    func maybeCompact(_ i: Int) {
        guard compactAfterEntries > 0, nodes[i].status == .up else { return }
        let core = nodes[i].core
        let applied = core.appliedIndex
        guard applied.rawValue >= core.snapshotMetadata.index.rawValue + UInt64(compactAfterEntries) else { return }
        precondition(nodes[i].machine.appliedIndex == applied, "state machine and core disagree on applied")
        do {
            try nodes[i].core.compact(through: applied)
        } catch .configurationPending {
            return  // a membership change takes effect first; compact on a later turn
        } catch {
            preconditionFailure("compaction refused: \(error)")
        }
        let data = nodes[i].machine.snapshot(at: nodes[i].core.snapshotMetadata)
        nodes[i].running.log.disk.write(.compact(nodes[i].core.snapshotMetadata, data))
        nodes[i].running.log.disk.sync()
        nodes[i].running.machine.currentSnapshot = data
        stats.compactions += 1
    }

    // MARK: Network

    func sendRaft(_ message: Message, from i: Int) {
        var message = message
        var data: MachineSnapshot?
        if case .snapshot(let metadata) = message.kind {
            // The message may have been queued before a newer compaction:
            // send the newest snapshot held, as its metadata says.
            let current = nodes[i].core.snapshotMetadata
            precondition(current.index >= metadata.index, "a member's snapshot went backwards")
            data = nodes[i].currentSnapshot
            precondition(data?.index == current.index, "member \(nodes[i].id) holds no snapshot at \(current.index)")
            message.kind = .snapshot(current)
        }
        network.send(.raft(message, snapshot: data), from: .node(message.from), to: .node(message.to), now: now, random: &random)
    }

    func respond(from i: Int, to client: Int, sequence: UInt64, _ outcome: ClientResponse.Outcome) {
        network.send(
            .response(ClientResponse(client: client, sequence: sequence, outcome: outcome)),
            from: .node(nodes[i].id), to: .client(client), now: now, random: &random)
    }

    /// Hand a packet to its receiver; returns the member it touched.
    func deliver(_ packet: SimNetwork.InFlight) -> Int? {
        trace.record(now, packet)
        switch packet.to {
        case .client(let c):
            if case .response(let response) = packet.packet { clientReceived(c, response) }
            return nil
        case .node(let id):
            guard let i = nodeIndex[id], nodes[i].status == .up else { return nil }
            switch packet.packet {
            case .raft(let message, let snapshot):
                if case .snapshot(let metadata) = message.kind, let snapshot {
                    nodes[i].storeReceivedSnapshot(metadata.index, snapshot)
                }
                nodes[i].core.step(message)
            case .request(let request):
                handleRequest(i, request)
            case .response:
                break
            }
            return i
        }
    }

    func handleRequest(_ i: Int, _ request: ClientRequest) {
        let core = nodes[i].core
        if case .get = request.operation {
            // A leader confirms the read index; a follower forwards the
            // read to its leader (`RaftCore.readIndex`) and serves it here.
            let context = nextReadContext
            nextReadContext += 1
            do {
                // Under lease reads, every other read may use the lease (as a
                // shell offers it per read), so both kinds mix; drawn from
                // the context, not the generator, to keep seeds' histories.
                try nodes[i].core.readIndex(context: context, mayUseLease: context % 2 == 0)
                nodes[i].pendingReads[context] = request
            } catch {
                respond(from: i, to: request.client, sequence: request.sequence, .notLeader(hint: core.leader))
            }
            return
        }
        let command = KVCommand(client: request.client, sequence: request.sequence, operation: request.operation)
        do {
            try nodes[i].core.propose([command.encoded])
            if options.engine == .paxos { paxosChecker.noteProposed(command.encoded) }
            nodes[i].pendingWrites[SimNode.ClientKey(client: request.client, sequence: request.sequence)] = request.client
        } catch {
            let hint: NodeID?
            switch error {
            case .notLeader(let h): hint = h
            case .transferInProgress(let to): hint = to
            default: hint = nil
            }
            respond(from: i, to: request.client, sequence: request.sequence, .notLeader(hint: hint))
        }
    }
}
