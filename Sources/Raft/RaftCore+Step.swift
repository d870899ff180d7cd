import Consensus

extension RaftCore {
    public mutating func step(_ m: Message) {
        guard m.to == id, m.from != id, hears(m) else { return }
        if m.term > term {
            switch m.kind {
            case .preVote, .vote(_, _, transfer: false):
                // Stickiness: a member that hears from a leader ignores
                // campaigns, so a partitioned member cannot depose it on return.
                if inLeaderLease { return }
            default:
                break
            }
            switch m.kind {
            case .preVote:
                break  // A pre-vote changes nothing here.
            case .preVoteResponse(granted: true):
                break  // Granted pre-votes carry the future term.
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: nil)
            }
        } else if m.term < term {
            switch m.kind {
            case .append, .heartbeat:
                // A stale leader, perhaps cut off and returned: tell it the
                // term so it steps down (with pre-vote and check-quorum,
                // terms no longer rise on their own to do so).
                if settings.checkQuorum || settings.preVote {
                    send(.appendResponse(reject: false, index: .zero, hintIndex: .zero, hintTerm: .zero), to: m.from)
                }
            case .preVote:
                send(.preVoteResponse(granted: false), to: m.from)
            default:
                break
            }
            return
        }

        switch m.kind {
        case .preVote(let lastIndex, let lastTerm):
            handleVoteRequest(m, lastIndex: lastIndex, lastTerm: lastTerm, isPreVote: true)
            return
        case .vote(let lastIndex, let lastTerm, _):
            handleVoteRequest(m, lastIndex: lastIndex, lastTerm: lastTerm, isPreVote: false)
            return
        default:
            break
        }

        switch role {
        case .leader: stepLeader(m)
        case .candidate, .preCandidate: stepCandidate(m)
        case .follower: stepFollower(m)
        }
    }

    /// Whether a message's sender may be heard at all: a member that knows
    /// its configuration hears only members of it, and takes votes asked
    /// only from voters, so a stranger (or a removed member) cannot raise
    /// its term or start an election here. The exception is what a leader
    /// sends (appends, heartbeats, snapshots, read index answers, and the
    /// hand-over of a leader that removed itself): a member
    /// lagging in applying the log may not know yet of a member added since
    /// that became leader, and those messages are the only way it learns.
    /// (The peer listener proves who sends what, `PeerHandshake`.)
    func hears(_ m: Message) -> Bool {
        switch m.kind {
        case .prepare, .promise, .accept, .accepted, .nack:
            return false  // Multi-Paxos' messages: a member of another engine's group sent them.
        default:
            break
        }
        if membership.allMembers.isEmpty { return true }  // a joiner before its first configuration
        switch m.kind {
        case .append, .heartbeat, .snapshot, .readIndexResponse:
            return true
        case .preVote, .vote:
            return membership.isVoter(m.from)
        case .timeoutNow:
            // A leader that removed itself hands over its leadership last.
            return membership.allMembers.contains(m.from) || m.from == leader
        case .preVoteResponse, .voteResponse, .appendResponse, .heartbeatResponse, .readIndex:
            return membership.allMembers.contains(m.from)
        case .prepare, .promise, .accept, .accepted, .nack:
            return false
        }
    }

    mutating func stepLeader(_ m: Message) {
        switch m.kind {
        case .appendResponse(let reject, let index, let hintIndex, let hintTerm):
            handleAppendResponse(from: m.from, reject: reject, index: index, hintIndex: hintIndex, hintTerm: hintTerm)
        case .heartbeatResponse(let round):
            handleHeartbeatResponse(from: m.from, round: round)
        case .readIndex(let context):
            handleForwardedRead(context, from: m.from)
        default:
            // Another leader in this term cannot exist; a checker reports it if it does.
            break
        }
    }

    mutating func stepCandidate(_ m: Message) {
        switch m.kind {
        case .preVoteResponse(let granted) where role == .preCandidate && (granted ? m.term == term.next : m.term == term):
            votes[m.from] = votes[m.from] ?? granted
            _ = finishCampaignIfDecided()
        case .voteResponse(let granted) where role == .candidate:
            votes[m.from] = votes[m.from] ?? granted
            _ = finishCampaignIfDecided()
        case .append, .heartbeat, .snapshot:
            // A leader of this term exists: follow it.
            becomeFollower(term: term, leader: m.from)
            stepFollower(m)
        default:
            break
        }
    }

    mutating func stepFollower(_ m: Message) {
        switch m.kind {
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            heardFromLeader(m.from)
            handleAppend(from: m.from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case .heartbeat(let commit, let round):
            heardFromLeader(m.from)
            commitAndApplyConfig(to: min(commit, log.lastIndex))
            send(.heartbeatResponse(round: round), to: m.from)
        case .snapshot(let metadata):
            heardFromLeader(m.from)
            handleSnapshot(from: m.from, metadata)
        case .timeoutNow:
            // The leader hands over: campaign at once, skipping the pre-vote.
            campaign(.transfer)
        case .readIndexResponse(let context, let index):
            handleReadIndexResponse(context, index: index, from: m.from)
        default:
            break
        }
    }

    mutating func heardFromLeader(_ from: NodeID) {
        leader = from
        resetElectionTimer()
    }

    mutating func handleAppend(from: NodeID, prevIndex: LogIndex, prevTerm: Term, entries: [Entry], commit: LogIndex) {
        if prevIndex < log.committed {
            send(.appendResponse(reject: false, index: log.committed, hintIndex: .zero, hintTerm: .zero), to: from)
            return
        }
        guard log.matchTerm(prevIndex, prevTerm) else {
            let (hintIndex, hintTerm) = log.lastIndex(atOrBelow: prevIndex, withTermAtMost: prevTerm)
            send(.appendResponse(reject: true, index: prevIndex, hintIndex: hintIndex, hintTerm: hintTerm), to: from)
            return
        }
        let lastNew = prevIndex + UInt64(entries.count)
        if let conflict = log.firstConflict(entries) {
            var incoming = entries[Int(conflict.rawValue - prevIndex.rawValue - 1)...]
            if settings.injectedBug == .keepConflict {
                // Injected bug: keep our own conflicting entries, take only the new tail.
                incoming = incoming.drop { $0.index <= log.lastIndex }
            }
            if !incoming.isEmpty { log.truncateAndAppend(Array(incoming)) }
        }
        commitAndApplyConfig(to: min(commit, lastNew))
        send(.appendResponse(reject: false, index: lastNew, hintIndex: .zero, hintTerm: .zero), to: from)
    }

    mutating func handleSnapshot(from: NodeID, _ metadata: SnapshotMetadata) {
        if metadata.index <= log.committed {
            send(.appendResponse(reject: false, index: log.committed, hintIndex: .zero, hintTerm: .zero), to: from)
            return
        }
        if log.matchTerm(metadata.index, metadata.term) {
            // We hold the snapshot's last entry already: just learn the commit.
            commitAndApplyConfig(to: metadata.index)
            send(.appendResponse(reject: false, index: log.committed, hintIndex: .zero, hintTerm: .zero), to: from)
            return
        }
        log.restore(metadata)
        membership = metadata.membership
        configAppliedThrough = metadata.index
        appliedConfigs = []
        snapshotToInstall = metadata
        send(.appendResponse(reject: false, index: metadata.index, hintIndex: .zero, hintTerm: .zero), to: from)
    }
}
