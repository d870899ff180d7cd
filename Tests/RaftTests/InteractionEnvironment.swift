import Consensus
import Raft

/// A small world of Raft cores for data-driven tests: a mailbox instead of
/// a network, a record of what each member persisted, and commands that
/// print every Ready so a scenario's whole behaviour is visible in its file.
struct InteractionEnvironment {
    var settings = RaftSettings()
    var cores: [NodeID: RaftCore] = [:]
    var disks: [NodeID: DurableState] = [:]
    var mailbox: [Message] = []
    var cut: Set<Pair> = []
    var output: [String] = []
    static let stabilizeRoundsMax = 1_000

    struct Pair: Hashable {
        var from: NodeID
        var to: NodeID
    }

    var ids: [NodeID] { cores.keys.sorted() }

    mutating func say(_ line: String) { output.append(line) }

    func core(_ id: NodeID) throws -> RaftCore {
        guard let core = cores[id] else { throw HarnessError("no member \(id)") }
        return core
    }

    // MARK: Printing

    static func describe(_ entry: Entry) -> String {
        switch entry.payload {
        case .command(let bytes): "\(entry.term)/\(entry.index) \"\(String(decoding: bytes, as: UTF8.self))\""
        default: entry.description
        }
    }

    mutating func processReady(_ id: NodeID) throws {
        var core = try core(id)
        guard core.hasReady else { return }
        let ready = core.ready()
        say("> \(id) handling Ready")
        if let hs = ready.hardState { say("  HardState \(hs)\(ready.mustSync ? "" : " (no sync)")") }
        if let snapshot = ready.snapshot { say("  Snapshot \(snapshot)") }
        if !ready.entries.isEmpty { say("  Entries: " + ready.entries.map(Self.describe).joined(separator: ", ")) }
        if !ready.committed.isEmpty { say("  Committed: " + ready.committed.map(Self.describe).joined(separator: ", ")) }
        for m in ready.messagesNow { say("  send now: \(m)") }
        for m in ready.messagesAfterPersist { say("  send after persist: \(m)") }
        if !ready.readStates.isEmpty { say("  ReadStates: " + ready.readStates.map(\.description).joined(separator: ", ")) }
        // Persist as the contract says: snapshot, entries, hard state.
        var disk = disks[id] ?? DurableState()
        if let snapshot = ready.snapshot {
            disk.snapshot = snapshot
            disk.entries = []
        }
        if let first = ready.entries.first {
            let base = (disk.snapshot?.index ?? .zero) + 1
            disk.entries.removeSubrange(Int(first.index.rawValue - base.rawValue)...)
            disk.entries.append(contentsOf: ready.entries)
        }
        if let hs = ready.hardState { disk.hardState = hs }
        disks[id] = disk
        mailbox.append(contentsOf: ready.messagesNow)
        mailbox.append(contentsOf: ready.messagesAfterPersist)
        core.advance(ready)
        cores[id] = core
    }

    /// Deliver queued messages addressed to `targets` (all when empty).
    mutating func deliver(to targets: Set<NodeID>, drop: Bool, quiet: Bool = false) {
        var keep: [Message] = []
        let batch = mailbox
        mailbox = []
        for m in batch {
            guard targets.isEmpty || targets.contains(m.to) else {
                keep.append(m)
                continue
            }
            if drop || cut.contains(Pair(from: m.from, to: m.to)) || cores[m.to] == nil {
                if !quiet { say("  dropped: \(m)") }
                continue
            }
            cores[m.to]!.step(m)
        }
        mailbox = keep + mailbox
    }

    /// Process Readies and deliver messages until nothing moves.
    mutating func stabilize(_ only: Set<NodeID>) throws {
        for _ in 0..<Self.stabilizeRoundsMax {
            let active = ids.filter { only.isEmpty || only.contains($0) }
            let readyNodes = active.filter { cores[$0]!.hasReady }
            let deliverable = mailbox.contains { only.isEmpty || only.contains($0.to) }
            if readyNodes.isEmpty && !deliverable { return }
            for id in readyNodes { try processReady(id) }
            deliver(to: only, drop: false, quiet: false)
        }
        throw HarnessError("did not stabilize in \(Self.stabilizeRoundsMax) rounds")
    }

    func statusLine(_ id: NodeID) -> String {
        let c = cores[id]!
        return "\(id): \(c.role) term=\(c.term) lead=\(c.leader.map(\.description) ?? "-") commit=\(c.commitIndex)"
            + " applied=\(c.appliedIndex) last=\(c.lastTerm)/\(c.lastIndex) \(c.membership)"
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
