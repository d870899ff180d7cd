import Consensus
import MultiPaxos
import Raft

/// Either consensus core behind one concrete type, so a shell that chooses
/// its engine at start (`ballot --engine`, `ballot-sim --engine`) runs one
/// `ReplicaDriver` type. Mutations go through the existential in place (it
/// is uniquely held), so a core's log is never copied by a call.
public struct AnyEngine: ConsensusEngine {
    private var base: any ConsensusEngine
    public let kind: EngineKind

    public init(_ core: RaftCore) {
        base = core
        kind = .raft
    }

    public init(_ core: PaxosCore) {
        base = core
        kind = .paxos
    }

    /// The Raft core, when this is one (for what only Raft offers: replication progress, its checkers).
    public var raft: RaftCore? { base as? RaftCore }
    /// The Multi-Paxos core, when this is one.
    public var paxos: PaxosCore? { base as? PaxosCore }

    public var id: NodeID { base.id }
    public var role: Role { base.role }
    public var term: Term { base.term }
    public var leader: NodeID? { base.leader }
    public var membership: Membership { base.membership }
    public var commitIndex: LogIndex { base.commitIndex }
    public var lastIndex: LogIndex { base.lastIndex }
    public var appliedIndex: LogIndex { base.appliedIndex }
    public var snapshotMetadata: SnapshotMetadata { base.snapshotMetadata }
    public func membership(at index: LogIndex) -> Membership { base.membership(at: index) }
    public func checkInvariants() { base.checkInvariants() }

    public mutating func tick() { base.tick() }
    public mutating func step(_ message: Message) { base.step(message) }
    @discardableResult
    public mutating func propose(_ commands: [[UInt8]]) throws(ProposeError) -> LogIndex { try base.propose(commands) }
    @discardableResult
    public mutating func proposeConfigChange(_ change: ConfigChange) throws(ProposeError) -> LogIndex {
        try base.proposeConfigChange(change)
    }
    public mutating func readIndex(context: UInt64, mayUseLease: Bool) throws(ReadIndexError) {
        try base.readIndex(context: context, mayUseLease: mayUseLease)
    }
    public mutating func transferLeadership(to target: NodeID) throws(TransferError) { try base.transferLeadership(to: target) }
    public mutating func campaign() { base.campaign() }
    public mutating func compact(through index: LogIndex) throws(CompactError) { try base.compact(through: index) }

    public var hasReady: Bool { base.hasReady }
    public mutating func ready() -> Ready { base.ready() }
    public mutating func advance(_ ready: Ready) { base.advance(ready) }
}
