import Consensus

/// Consensus messages on the wire between members, in the WAL's codec.
extension ConsensusCodec {
    public static func encode(_ m: Message) -> [UInt8] {
        var w = BinaryWriter()
        w.u64(m.from.rawValue)
        w.u64(m.to.rawValue)
        w.u64(m.term.rawValue)
        switch m.kind {
        case .preVote(let li, let lt):
            w.u8(0); w.u64(li.rawValue); w.u64(lt.rawValue)
        case .preVoteResponse(let granted):
            w.u8(1); w.u8(granted ? 1 : 0)
        case .vote(let li, let lt, let transfer):
            w.u8(2); w.u64(li.rawValue); w.u64(lt.rawValue); w.u8(transfer ? 1 : 0)
        case .voteResponse(let granted):
            w.u8(3); w.u8(granted ? 1 : 0)
        case .append(let pi, let pt, let entries, let commit):
            w.u8(4); w.u64(pi.rawValue); w.u64(pt.rawValue); w.u64(commit.rawValue)
            w.u32(UInt32(entries.count))
            for e in entries { w.blob(encode(e)) }
        case .appendResponse(let reject, let index, let hintIndex, let hintTerm):
            w.u8(5); w.u8(reject ? 1 : 0); w.u64(index.rawValue); w.u64(hintIndex.rawValue); w.u64(hintTerm.rawValue)
        case .heartbeat(let commit, let round):
            w.u8(6); w.u64(commit.rawValue); w.u64(round)
        case .heartbeatResponse(let round):
            w.u8(7); w.u64(round)
        case .snapshot(let meta):
            w.u8(8); w.u64(meta.index.rawValue); w.u64(meta.term.rawValue); encode(meta.membership, into: &w)
        case .timeoutNow:
            w.u8(9)
        case .readIndex(let context):
            w.u8(10); w.u64(context)
        case .readIndexResponse(let context, let index):
            w.u8(11); w.u64(context); w.u64(index.rawValue)
        case .prepare(let first, let handoverRound):
            w.u8(12); w.u64(first.rawValue); w.u64(handoverRound.rawValue)
        case .promise(let first, let accepted, let more, let commit):
            w.u8(13); w.u64(first.rawValue); w.u8(more ? 1 : 0); w.u64(commit.rawValue)
            w.u32(UInt32(accepted.count))
            for e in accepted { w.blob(encode(e)) }
        case .accept(let entries, let commit):
            w.u8(14); w.u64(commit.rawValue)
            w.u32(UInt32(entries.count))
            for e in entries { w.blob(encode(e)) }
        case .accepted(let first, let last, let through, let commit):
            w.u8(15); w.u64(first.rawValue); w.u64(last.rawValue); w.u64(through.rawValue); w.u64(commit.rawValue)
        case .nack:
            w.u8(16)
        }
        return w.bytes
    }

    /// The message, or nil when the bytes are not one this codec wrote.
    public static func decodeMessage(_ bytes: [UInt8]) -> Message? {
        var r = BinaryReader(bytes)
        guard let from = r.u64(), let to = r.u64(), let term = r.u64(), let tag = r.u8() else { return nil }
        func bool(_ r: inout BinaryReader) -> Bool? {
            guard let b = r.u8(), b <= 1 else { return nil }
            return b == 1
        }
        func entries(_ r: inout BinaryReader) -> [Entry]? {
            guard let n = r.u32(), Int(n) <= bytes.count else { return nil }
            var entries: [Entry] = []
            entries.reserveCapacity(Int(n))
            for _ in 0..<n {
                guard let b = r.blob(), let e = decodeEntry(b) else { return nil }
                entries.append(e)
            }
            return entries
        }
        let kind: Message.Kind
        switch tag {
        case 0:
            guard let li = r.u64(), let lt = r.u64() else { return nil }
            kind = .preVote(lastIndex: LogIndex(li), lastTerm: Term(lt))
        case 1:
            guard let g = bool(&r) else { return nil }
            kind = .preVoteResponse(granted: g)
        case 2:
            guard let li = r.u64(), let lt = r.u64(), let t = bool(&r) else { return nil }
            kind = .vote(lastIndex: LogIndex(li), lastTerm: Term(lt), transfer: t)
        case 3:
            guard let g = bool(&r) else { return nil }
            kind = .voteResponse(granted: g)
        case 4:
            guard let pi = r.u64(), let pt = r.u64(), let c = r.u64(), let es = entries(&r) else { return nil }
            kind = .append(prevIndex: LogIndex(pi), prevTerm: Term(pt), entries: es, commit: LogIndex(c))
        case 5:
            guard let rej = bool(&r), let i = r.u64(), let hi = r.u64(), let ht = r.u64() else { return nil }
            kind = .appendResponse(reject: rej, index: LogIndex(i), hintIndex: LogIndex(hi), hintTerm: Term(ht))
        case 6:
            guard let c = r.u64(), let round = r.u64() else { return nil }
            kind = .heartbeat(commit: LogIndex(c), round: round)
        case 7:
            guard let round = r.u64() else { return nil }
            kind = .heartbeatResponse(round: round)
        case 8:
            guard let i = r.u64(), let t = r.u64(), let m = decodeMembership(&r) else { return nil }
            kind = .snapshot(SnapshotMetadata(index: LogIndex(i), term: Term(t), membership: m))
        case 9:
            kind = .timeoutNow
        case 10:
            guard let c = r.u64() else { return nil }
            kind = .readIndex(context: c)
        case 11:
            guard let c = r.u64(), let i = r.u64() else { return nil }
            kind = .readIndexResponse(context: c, index: LogIndex(i))
        case 12:
            guard let f = r.u64(), let h = r.u64() else { return nil }
            kind = .prepare(firstSlot: LogIndex(f), handoverRound: Term(h))
        case 13:
            guard let f = r.u64(), let more = bool(&r), let c = r.u64(), let es = entries(&r) else { return nil }
            kind = .promise(firstSlot: LogIndex(f), accepted: es, more: more, commit: LogIndex(c))
        case 14:
            guard let c = r.u64(), let es = entries(&r) else { return nil }
            kind = .accept(entries: es, commit: LogIndex(c))
        case 15:
            guard let f = r.u64(), let l = r.u64(), let t = r.u64(), let c = r.u64() else { return nil }
            kind = .accepted(first: LogIndex(f), last: LogIndex(l), through: LogIndex(t), commit: LogIndex(c))
        case 16:
            kind = .nack
        default:
            return nil
        }
        guard r.atEnd else { return nil }
        return Message(from: NodeID(from), to: NodeID(to), term: Term(term), kind: kind)
    }
}
