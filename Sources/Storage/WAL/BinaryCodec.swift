import Consensus

/// Little-endian binary writing and reading for WAL payloads and peer messages. Reading
/// never traps: malformed input is a `nil`, which callers report as
/// corruption with the file and offset.
public struct BinaryWriter {
    public var bytes: [UInt8] = []
    public init() {}

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    public mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    public mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    public mutating func ids(_ s: Set<NodeID>) {
        u32(UInt32(s.count))
        for id in s.sorted() { u64(id.rawValue) }
    }
}

public struct BinaryReader {
    public let bytes: [UInt8]
    public var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var atEnd: Bool { offset == bytes.count }

    public mutating func u8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func u32() -> UInt32? {
        guard offset + 4 <= bytes.count else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * i) }
        offset += 4
        return v
    }
    public mutating func u64() -> UInt64? {
        guard offset + 8 <= bytes.count else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * i) }
        offset += 8
        return v
    }
    public mutating func blob() -> [UInt8]? {
        guard let n = u32(), offset + Int(n) <= bytes.count else { return nil }
        defer { offset += Int(n) }
        return Array(bytes[offset..<(offset + Int(n))])
    }
    public mutating func ids() -> Set<NodeID>? {
        guard let n = u32(), n <= 1 << 16 else { return nil }
        var s = Set<NodeID>()
        for _ in 0..<n {
            guard let v = u64() else { return nil }
            s.insert(NodeID(v))
        }
        return s
    }
}

/// Encodings of the consensus values the WAL stores and peers exchange.
public enum ConsensusCodec {
    public static func encode(_ hs: HardState) -> [UInt8] {
        var w = BinaryWriter()
        w.u64(hs.term.rawValue)
        w.u64(hs.vote?.rawValue ?? 0)
        w.u64(hs.commit.rawValue)
        return w.bytes
    }

    public static func decodeHardState(_ bytes: [UInt8]) -> HardState? {
        var r = BinaryReader(bytes)
        guard let term = r.u64(), let vote = r.u64(), let commit = r.u64(), r.atEnd else { return nil }
        return HardState(term: Term(term), vote: vote == 0 ? nil : NodeID(vote), commit: LogIndex(commit))
    }

    public static func encode(_ m: Membership, into w: inout BinaryWriter) {
        w.ids(m.voters)
        w.ids(m.outgoingVoters)
        w.ids(m.learners)
    }

    public static func decodeMembership(_ r: inout BinaryReader) -> Membership? {
        guard let v = r.ids(), let o = r.ids(), let l = r.ids() else { return nil }
        return Membership(voters: v, outgoingVoters: o, learners: l)
    }

    public static func encode(_ e: Entry) -> [UInt8] {
        var w = BinaryWriter()
        if case .command(let bytes) = e.payload { w.bytes.reserveCapacity(bytes.count + 24) }
        w.u64(e.term.rawValue)
        w.u64(e.index.rawValue)
        switch e.payload {
        case .command(let bytes):
            w.u8(0)
            w.blob(bytes)
        case .noop:
            w.u8(1)
        case .configChange(let change):
            w.u8(2)
            switch change.kind {
            case .bootstrap(let m):
                w.u8(0)
                encode(m, into: &w)
            case .change:
                w.u8(1)
            case .leaveJoint:
                w.u8(2)
            }
            w.u32(UInt32(change.changes.count))
            for step in change.changes {
                switch step {
                case .addVoter(let id): w.u8(0); w.u64(id.rawValue)
                case .removeVoter(let id): w.u8(1); w.u64(id.rawValue)
                case .addLearner(let id): w.u8(2); w.u64(id.rawValue)
                case .promoteLearner(let id): w.u8(3); w.u64(id.rawValue)
                }
            }
        }
        return w.bytes
    }

    public static func decodeEntry(_ bytes: [UInt8]) -> Entry? {
        var r = BinaryReader(bytes)
        guard let term = r.u64(), let index = r.u64(), let tag = r.u8() else { return nil }
        let payload: Entry.Payload
        switch tag {
        case 0:
            guard let b = r.blob() else { return nil }
            payload = .command(b)
        case 1:
            payload = .noop
        case 2:
            guard let kindTag = r.u8() else { return nil }
            let kind: ConfigChange.Kind
            switch kindTag {
            case 0:
                guard let m = decodeMembership(&r) else { return nil }
                kind = .bootstrap(m)
            case 1: kind = .change
            case 2: kind = .leaveJoint
            default: return nil
            }
            guard let n = r.u32(), n <= 1 << 16 else { return nil }
            var steps: [ConfigChange.Step] = []
            for _ in 0..<n {
                guard let t = r.u8(), let id = r.u64().map({ NodeID($0) }) else { return nil }
                switch t {
                case 0: steps.append(.addVoter(id))
                case 1: steps.append(.removeVoter(id))
                case 2: steps.append(.addLearner(id))
                case 3: steps.append(.promoteLearner(id))
                default: return nil
                }
            }
            payload = .configChange(ConfigChange(kind: kind, changes: steps))
        default:
            return nil
        }
        guard r.atEnd else { return nil }
        return Entry(term: Term(term), index: LogIndex(index), payload: payload)
    }
}
