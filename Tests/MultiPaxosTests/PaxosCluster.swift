import Consensus
@_spi(BugInjection) import MultiPaxos

/// A test's Multi-Paxos group: cores over an in-memory network and disks
/// that keep what each Ready wrote, with checkers for what Paxos promises.
///
/// Every write is durable when `advance` is called (a crash loses nothing
/// a core was told is written; losing unsynced writes is the simulator's
/// business). The network delivers in any order, drops, duplicates and
/// partitions, as the test's seeded generator decides.
struct PaxosCluster {
    struct Disk {
        var hardState = HardState()
        var snapshot: SnapshotMetadata?
        var entries: [Entry] = []

        mutating func persist(_ ready: Ready) {
            if let snapshot = ready.snapshot {
                self.snapshot = snapshot
                entries = []
            }
            if let first = ready.entries.first {
                let base = (snapshot?.index ?? .zero) + 1
                precondition(first.index >= base && first.index <= base + UInt64(entries.count), "disk log gap at \(first.index)")
                entries.removeSubrange(Int(first.index.rawValue - base.rawValue)...)
                entries += ready.entries
            }
            if let hardState = ready.hardState { self.hardState = hardState }
        }

        var durable: DurableState { DurableState(hardState: hardState, snapshot: snapshot, entries: entries) }

        /// A crash in the middle of writing `ready`: a prefix of its
        /// records reached the disk, in the write-ahead log's units (a
        /// snapshot marker and the entries after it are one batch; the
        /// hard state follows). With `entriesTearApart` each entry is its
        /// own unit, as in the log before batch records: the old format,
        /// kept to prove the checkers catch what it loses. Returns the
        /// entries that reached the disk.
        mutating func persistTorn(_ ready: Ready, entriesTearApart: Bool, random: inout DeterministicRandom) -> [Entry] {
            var units: [Ready] = []
            func part(snapshot: SnapshotMetadata? = nil, entries: [Entry] = [], hardState: HardState? = nil) -> Ready {
                Ready(hardState: hardState, entries: entries, snapshot: snapshot)
            }
            if entriesTearApart {
                if let snapshot = ready.snapshot { units.append(part(snapshot: snapshot)) }
                units += ready.entries.map { part(entries: [$0]) }
            } else if ready.snapshot != nil || !ready.entries.isEmpty {
                units.append(part(snapshot: ready.snapshot, entries: ready.entries))
            }
            if let hardState = ready.hardState { units.append(part(hardState: hardState)) }
            let kept = units.prefix(Int.random(in: 0..<max(1, units.count), using: &random))
            for unit in kept { persist(unit) }
            return kept.flatMap(\.entries)
        }
    }

    private(set) var ids: [NodeID]
    var settings: PaxosSettings
    /// Test-only: torn writes keep a prefix of an append's entries, as the
    /// write-ahead log did before batch records (see `Disk.persistTorn`).
    var entriesTearApart = false
    var cores: [NodeID: PaxosCore] = [:]
    var disks: [NodeID: Disk] = [:]
    /// How far each member's state machine has applied.
    var appliedThrough: [NodeID: LogIndex] = [:]
    var network: [Message] = []
    var random: DeterministicRandom
    /// The value first applied in each slot, by any member: every other member must apply the same.
    var chosen: [LogIndex: Entry.Payload] = [:]
    /// Who accepted what in each slot and round, from what members wrote:
    /// a value is chosen once a quorum accepted it in one round.
    var acceptances: [SlotRound: (value: Entry.Payload, acceptors: Set<NodeID>)] = [:]
    /// The value chosen in each slot (by acceptances): no slot may have two.
    var chosenByQuorum: [LogIndex: Entry.Payload] = [:]
    struct SlotRound: Hashable {
        var slot: LogIndex
        var round: Term
    }
    /// Every command proposed, with the member that proposed it.
    var proposed: [[UInt8]: NodeID] = [:]
    /// The highest slot of a command its proposer applied: an acknowledged write.
    var acknowledgedThrough = LogIndex.zero
    /// Reads asked and not yet answered: context to the acknowledged slot when asked.
    var pendingReads: [UInt64: LogIndex] = [:]
    var readsServed = 0
    var nextContext: UInt64 = 1
    var nextCommand: UInt32 = 1
    var violations: [String] = []
    /// Members cut off from everyone else.
    var isolated: Set<NodeID> = []
    /// The last events, for a failing seed's report.
    var trace: [String] = []
    static let traceMax = 300

    mutating func note(_ event: String) {
        trace.append(event)
        if trace.count > Self.traceMax { trace.removeFirst(trace.count - Self.traceMax) }
    }

    init(members: Int, settings: PaxosSettings = PaxosSettings(), seed: UInt64 = 1) throws {
        self.ids = (1...UInt64(members)).map { NodeID($0) }
        self.settings = settings
        self.random = DeterministicRandom(seed: seed)
        for id in ids {
            cores[id] = try PaxosCore(id: id, bootstrap: Membership(voters: Set(ids)), settings: settings, seed: seed)
            disks[id] = Disk()
            appliedThrough[id] = .zero
        }
        drainAll()
    }

    var leaders: [NodeID] { ids.filter { cores[$0]?.role == .leader } }

    /// Start member `id` with nothing, as an operator starts one after adding it.
    mutating func join(_ id: NodeID, seed: UInt64 = 1) throws {
        precondition(cores[id] == nil, "member \(id) already runs")
        ids.append(id)
        cores[id] = try PaxosCore(id: id, settings: settings, seed: seed, state: .empty)
        disks[id] = Disk()
        appliedThrough[id] = .zero
    }

    /// Run every Ready a member has: persist, send, apply, answer reads, advance.
    mutating func drain(_ id: NodeID) {
        var rounds = 0
        while var core = cores[id], core.hasReady {
            rounds += 1
            precondition(rounds < 1_000, "member \(id) produces Readies without end")
            let ready = core.ready()
            disks[id]!.persist(ready)
            network += ready.messagesNow + ready.messagesAfterPersist
            if let snapshot = ready.snapshot {
                // The bytes came with the message: the leader's state machine through its index.
                appliedThrough[id] = snapshot.index
            }
            if !ready.entries.isEmpty || ready.hardState != nil {
                note("  \(id) writes \(ready.hardState.map { "\($0) " } ?? "")\(ready.entries)")
            }
            for entry in ready.entries where entry.term > .zero { accepted(entry, by: id) }
            for entry in ready.committed { apply(entry, at: id) }
            for read in ready.readStates { served(read, at: id) }
            core.advance(ready)
            core.checkInvariants()
            cores[id] = core
        }
    }

    mutating func drainAll() { for id in ids { drain(id) } }

    /// Paxos safety, checked on every acceptance: one round holds one
    /// value per slot, and no slot has two values chosen.
    mutating func accepted(_ entry: Entry, by id: NodeID) {
        let key = SlotRound(slot: entry.index, round: entry.term)
        var record = acceptances[key] ?? (entry.payload, [])
        if record.value != entry.payload {
            violations.append("slot \(entry.index) round \(entry.term): member \(id) accepted \(entry.payload), another \(record.value)")
        }
        record.acceptors.insert(id)
        acceptances[key] = record
        guard record.acceptors.count > ids.count / 2 else { return }
        if let chosen = chosenByQuorum[entry.index] {
            if chosen != record.value {
                violations.append("slot \(entry.index): \(record.value) chosen in round \(entry.term), \(chosen) chosen before")
            }
        } else {
            chosenByQuorum[entry.index] = record.value
            if case .command(let bytes) = record.value, proposed[bytes] == nil {
                violations.append("slot \(entry.index): a command no one proposed was chosen")
            }
        }
    }

    mutating func apply(_ entry: Entry, at id: NodeID) {
        let expected = appliedThrough[id]! + 1
        note("  \(id) applies \(entry)")
        if entry.index != expected { violations.append("member \(id) applied slot \(entry.index), expected \(expected)") }
        appliedThrough[id] = entry.index
        if let first = chosen[entry.index] {
            if first != entry.payload {
                violations.append("slot \(entry.index): member \(id) applied \(entry.payload), another applied \(first)")
            }
        } else {
            chosen[entry.index] = entry.payload
        }
        if case .command(let bytes) = entry.payload {
            guard let proposer = proposed[bytes] else {
                violations.append("slot \(entry.index) holds a command no one proposed")
                return
            }
            if proposer == id { acknowledgedThrough = max(acknowledgedThrough, entry.index) }
        }
    }

    mutating func served(_ read: ReadState, at id: NodeID) {
        guard let floor = pendingReads.removeValue(forKey: read.context) else { return }
        readsServed += 1
        if read.index < floor {
            violations.append("read \(read.context) at member \(id) got index \(read.index), below the acknowledged write at \(floor)")
        }
    }

    // MARK: Actions

    mutating func deliver(_ message: Message) {
        guard var core = cores[message.to] else { return }
        if crossesPartition(message) { return }
        note("deliver \(message)")
        core.step(message)
        cores[message.to] = core
        drain(message.to)
    }

    /// Deliver everything in flight, in order, until the network is quiet.
    mutating func stabilize(stepsMax: Int = 10_000) {
        var steps = 0
        while !network.isEmpty && steps < stepsMax {
            deliver(network.removeFirst())
            steps += 1
        }
    }

    mutating func tick(_ id: NodeID) {
        guard var core = cores[id] else { return }
        let role = core.role
        core.tick()
        if core.role != role { note("tick \(id): \(role) -> \(core.role) round \(core.term)") }
        cores[id] = core
        drain(id)
    }

    @discardableResult
    mutating func propose(at id: NodeID) -> [UInt8]? {
        guard var core = cores[id], core.role == .leader else { return nil }
        let command = withUnsafeBytes(of: nextCommand.bigEndian) { Array($0) }
        nextCommand += 1
        proposed[command] = id
        do throws(ProposeError) {
            try core.propose([command])
        } catch {
            return nil
        }
        cores[id] = core
        drain(id)
        return command
    }

    struct NotProposed: Error {}

    /// `propose(at:)` for a test that expects it to succeed.
    mutating func mustPropose(at id: NodeID) throws -> [UInt8] {
        guard let command = propose(at: id) else { throw NotProposed() }
        return command
    }

    mutating func read(at id: NodeID, mayUseLease: Bool = false) {
        guard var core = cores[id] else { return }
        let context = nextContext
        nextContext += 1
        do throws(ReadIndexError) {
            try core.readIndex(context: context, mayUseLease: mayUseLease)
        } catch {
            return
        }
        pendingReads[context] = acknowledgedThrough
        cores[id] = core
        drain(id)
    }

    mutating func crash(_ id: NodeID) {
        note("crash \(id)")
        cores[id] = nil
        network.removeAll { $0.to == id || $0.from == id }
    }

    /// A member crashes while writing what a message made it do: part of
    /// that Ready reaches its disk, nothing of it is sent or acknowledged.
    mutating func crashWhileWriting(_ id: NodeID) {
        guard var core = cores[id] else { return }
        // Most often an accept that fills a slot below ones the member
        // holds: the write that rewrites acceptances already acknowledged.
        let open = network.indices.filter { network[$0].to == id && !crossesPartition(network[$0]) }
        let fills = open.filter { i in
            guard case .accept(let entries, _) = network[i].kind, let first = entries.first else { return false }
            return first.index < core.lastIndex
        }
        let pick = fills.isEmpty || random.chance(percent: 25) ? open : fills
        if let i = pick.randomElement(using: &random) {
            let message = network.remove(at: i)
            note("deliver \(message), then crash while writing")
            core.step(message)
        }
        if core.hasReady {
            let ready = core.ready()
            let written = disks[id]!.persistTorn(ready, entriesTearApart: entriesTearApart, random: &random)
            note("  \(id) wrote only \(written)")
            for entry in written where entry.term > .zero { accepted(entry, by: id) }
        }
        cores[id] = core
        crash(id)
    }

    mutating func restart(_ id: NodeID) throws {
        guard cores[id] == nil else { return }
        note("restart \(id)")
        let disk = disks[id]!
        cores[id] = try PaxosCore(id: id, settings: settings, seed: random.next(), state: disk.durable)
        // The state machine restarts from the snapshot; the rest is applied again.
        appliedThrough[id] = disk.snapshot?.index ?? .zero
        drain(id)
    }

    /// Tick every live member for an election timeout with the network
    /// cut, so none is still sticky to the leader it last heard from;
    /// whatever they sent meanwhile is dropped.
    mutating func letElectionTimeoutPass() {
        let cut = isolated
        isolated = Set(ids)
        for _ in 0..<settings.electionTicks { for id in ids { tick(id) } }
        network.removeAll()
        isolated = cut
    }

    mutating func campaign(_ id: NodeID) {
        guard var core = cores[id] else { return }
        core.campaign()
        cores[id] = core
        drain(id)
    }

    static let heldMax = 2_000

    func crossesPartition(_ message: Message) -> Bool {
        isolated.contains(message.to) != isolated.contains(message.from)
    }

    /// Deliver one message, or drop or duplicate it. Messages across a
    /// partition wait in the queue until it heals (the oldest are dropped
    /// past `heldMax`); of the rest, mostly one near the head of the queue,
    /// now and then any, however old.
    mutating func deliverOne() {
        let open = network.indices.filter { !crossesPartition(network[$0]) }
        if network.count - open.count > Self.heldMax, let oldest = network.firstIndex(where: crossesPartition) {
            network.remove(at: oldest)
        }
        guard !open.isEmpty else { return }
        let window = random.chance(percent: 5) ? open.count : min(open.count, 8)
        let i = open[Int.random(in: 0..<window, using: &random)]
        let message = network[i]
        if !random.chance(percent: 5) { network.remove(at: i) }
        if random.chance(percent: 8) { return }
        deliver(message)
    }

    /// One random event: a delivery (perhaps reordered, dropped or
    /// duplicated), a tick, a proposal, a read, a crash or restart, a
    /// partition change, a compaction.
    mutating func randomStep() throws {
        if entriesTearApart && random.chance(percent: 3) {
            // The old format's proof: more crashes in the middle of a write
            // (drawn only in this mode, so the other runs keep their seeds).
            let member = ids[Int.random(in: 0..<ids.count, using: &random)]
            if cores[member] != nil { crashWhileWriting(member) } else { try restart(member) }
            return
        }
        let roll = Int.random(in: 0..<100, using: &random)
        let id = ids[Int.random(in: 0..<ids.count, using: &random)]
        switch roll {
        case 0..<45:
            // A burst: the network carries about as much as the members send.
            for _ in 0..<ids.count * 2 { deliverOne() }
        case 45..<60:
            for member in ids { tick(member) }  // time passes for everyone
        case 60..<70:
            tick(id)  // one clock runs ahead
        case 70..<82:
            if let leader = leaders.randomElement(using: &random) { propose(at: leader) }
        case 82..<88:
            read(at: id, mayUseLease: random.chance(percent: 50))
        case 88..<90:
            if cores[id] == nil {
                try restart(id)
            } else if random.chance(percent: 50) {
                crashWhileWriting(id)
            } else {
                crash(id)
            }
        case 90..<93:
            // A partition lasts long enough for the rest to elect a leader.
            if !isolated.isEmpty {
                if random.chance(percent: 25) { isolated.remove(isolated.first!) }
            } else if ids.count > 1 {
                isolated.insert(id)
            }
        case 93..<95:
            if var core = cores[id], core.appliedIndex > core.snapshotMetadata.index + 20 {
                try? core.compact(through: core.appliedIndex)
                cores[id] = core
                drain(id)
            }
        default:
            for crashed in ids where cores[crashed] == nil { try restart(crashed) }
        }
    }

    /// Heal everything, then run fault-free until a leader commits a new
    /// command on every member; returns whether it did within `ticksMax`.
    mutating func settle(ticksMax: Int = 2_000) throws -> Bool {
        isolated = []
        for id in ids where cores[id] == nil { try restart(id) }
        var command: [UInt8]?
        var proposedAt = 0
        for tick in 0..<ticksMax {
            for id in ids { self.tick(id) }
            stabilize()
            // A proposal lost to a change of leader is made again.
            if command != nil && tick - proposedAt > 100 { command = nil }
            if command == nil, let leader = leaders.first {
                command = propose(at: leader)
                proposedAt = tick
            }
            if let command, ids.allSatisfy({ id in
                guard let core = cores[id] else { return false }
                var slot = core.snapshotMetadata.index + 1
                while slot <= min(core.commitIndex, appliedThrough[id]!) {
                    if core.slot(slot)?.payload == .command(command) { return true }
                    slot = slot + 1
                }
                return false
            }) {
                return true
            }
        }
        return false
    }
}
