/// A message between members of one consensus group.
public struct Message: Sendable, Equatable, CustomStringConvertible {
    public var from: NodeID
    public var to: NodeID
    /// The sender's term, except for pre-votes, which carry the term the
    /// sender would campaign in without having adopted it.
    public var term: Term
    public var kind: Kind

    public init(from: NodeID, to: NodeID, term: Term, kind: Kind) {
        self.from = from
        self.to = to
        self.term = term
        self.kind = kind
    }

    public enum Kind: Sendable, Equatable {
        /// Would you vote for me if I campaigned? Changes no state (Raft thesis §9.6).
        case preVote(lastIndex: LogIndex, lastTerm: Term)
        case preVoteResponse(granted: Bool)
        /// `transfer`: sent on the leader's request, so followers waive their
        /// stickiness to the current leader.
        case vote(lastIndex: LogIndex, lastTerm: Term, transfer: Bool)
        case voteResponse(granted: Bool)
        case append(prevIndex: LogIndex, prevTerm: Term, entries: [Entry], commit: LogIndex)
        /// On success `index` is the last index now known to match. On
        /// rejection `index` is the `prevIndex` that failed and `hintIndex`,
        /// `hintTerm` name the follower's last entry that could still match,
        /// so the leader skips a whole term per round trip (Raft §5.3).
        case appendResponse(reject: Bool, index: LogIndex, hintIndex: LogIndex, hintTerm: Term)
        /// `round` numbers heartbeat rounds: one acknowledged round confirms
        /// leadership (and renews the lease) for every
        /// read that arrived before it (ReadIndex, Raft thesis §6.4).
        case heartbeat(commit: LogIndex, round: UInt64)
        case heartbeatResponse(round: UInt64)
        /// The follower's log lags the leader's compacted prefix. The shell
        /// attaches the snapshot bytes named by the metadata, or those of a
        /// newer snapshot it has taken since (rewriting the metadata to match):
        /// the follower acknowledges whichever index it installs.
        case snapshot(SnapshotMetadata)
        /// Campaign now, without waiting for a timeout (leadership transfer).
        case timeoutNow
        /// A follower's linearizable read, forwarded to its leader: `context`
        /// comes back in the answer, as in a `ReadState`.
        case readIndex(context: UInt64)
        /// The leader's answer to `readIndex`: serve the read once `index` is
        /// applied. The follower takes it only from its leader in the term it
        /// asked in; `RaftCore.readIndex(context:mayUseLease:)` says why a leader that
        /// forms a quorum with the asker may answer with no heartbeat round.
        case readIndexResponse(context: UInt64, index: LogIndex)

        // Multi-Paxos (`Sources/MultiPaxos`). `term` is the round of the
        // sender's proposal number; a proposer's own messages name it in `from`.
        /// Phase 1a for every slot from `firstSlot` on: promise this round
        /// and report what you accepted there. Sent again, in the same
        /// round, for the next page of a long answer. `handoverRound`: the
        /// round of the leader that asked the sender to take over (zero
        /// for none); only acceptors loyal to that very round waive their
        /// stickiness for it (a round has one proposer, so it names the leader).
        case prepare(firstSlot: LogIndex, handoverRound: Term)
        /// Phase 1b: the round is promised. `accepted` holds, in slot
        /// order, what the acceptor accepted from `firstSlot` on (each
        /// entry's `term` the round it was accepted in; slots with nothing
        /// accepted left out), at most one page: `more` says slots follow.
        case promise(firstSlot: LogIndex, accepted: [Entry], more: Bool, commit: LogIndex)
        /// Phase 2a: accept these values (consecutive slots) in this round.
        /// `commit`: every slot through it is chosen.
        case accept(entries: [Entry], commit: LogIndex)
        /// Phase 2b: slots `first...last` (none when `first > last`) are
        /// accepted in this round, and so is every slot in
        /// `(commit, through]`; `commit` is the acceptor's own.
        case accepted(first: LogIndex, last: LogIndex, through: LogIndex, commit: LogIndex)
        /// The acceptor promised a higher round (this message's `term`):
        /// the proposer's round is over.
        case nack
    }

    public var description: String {
        let head = "\(from)->\(to) t\(term)"
        switch kind {
        case .preVote(let li, let lt): return "\(head) PreVote last=\(lt)/\(li)"
        case .preVoteResponse(let g): return "\(head) PreVoteResp \(g ? "granted" : "rejected")"
        case .vote(let li, let lt, let tr): return "\(head) Vote last=\(lt)/\(li)\(tr ? " transfer" : "")"
        case .voteResponse(let g): return "\(head) VoteResp \(g ? "granted" : "rejected")"
        case .append(let pi, let pt, let es, let c):
            let list = es.isEmpty ? "" : " [" + es.map(\.description).joined(separator: ", ") + "]"
            return "\(head) App prev=\(pt)/\(pi) commit=\(c)\(list)"
        case .appendResponse(let r, let i, let hi, let ht):
            return r ? "\(head) AppResp reject=\(i) hint=\(ht)/\(hi)" : "\(head) AppResp ok=\(i)"
        case .heartbeat(let c, let r): return "\(head) Heartbeat commit=\(c) round=\(r)"
        case .heartbeatResponse(let r): return "\(head) HeartbeatResp round=\(r)"
        case .snapshot(let m): return "\(head) Snapshot \(m)"
        case .timeoutNow: return "\(head) TimeoutNow"
        case .readIndex(let c): return "\(head) ReadIndex ctx=\(c)"
        case .readIndexResponse(let c, let i): return "\(head) ReadIndexResp ctx=\(c) index=\(i)"
        case .prepare(let f, let h): return "\(head) Prepare from=\(f)\(h > .zero ? " handover=\(h)" : "")"
        case .promise(let f, let es, let more, let c):
            let list = es.isEmpty ? "" : " [" + es.map(\.description).joined(separator: ", ") + "]"
            return "\(head) Promise from=\(f) commit=\(c)\(more ? " more" : "")\(list)"
        case .accept(let es, let c):
            let list = es.isEmpty ? "" : " [" + es.map(\.description).joined(separator: ", ") + "]"
            return "\(head) Accept commit=\(c)\(list)"
        case .accepted(let f, let l, let t, let c):
            return "\(head) Accepted \(f <= l ? "\(f)...\(l)" : "none") through=\(t) commit=\(c)"
        case .nack: return "\(head) Nack"
        }
    }
}
