import Consensus

extension PaxosCore {
    @discardableResult
    public mutating func propose(_ commands: [[UInt8]]) throws(ProposeError) -> LogIndex {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        if let target = transferTarget { throw .transferInProgress(to: target) }
        guard !commands.isEmpty else { throw .emptyBatch }
        guard commands.count <= settings.proposalBatchMax else {
            throw .batchTooLarge(entries: commands.count, limit: settings.proposalBatchMax)
        }
        for command in commands where command.count + Entry.overheadBytes > settings.entryBytesMax {
            throw .entryTooLarge(bytes: command.count + Entry.overheadBytes, limit: settings.entryBytesMax)
        }
        return try open(commands.map { .command($0) })
    }

    /// Open the next slots with these values and send them to every acceptor.
    mutating func open(_ payloads: [Entry.Payload]) throws(ProposeError) -> LogIndex {
        let openSlots = Int(log.lastIndex.rawValue - log.committed.rawValue)
        guard openSlots + payloads.count <= settings.slotWindowMax else {
            throw .windowFull(openSlots: openSlots, limit: settings.slotWindowMax)
        }
        let first = log.lastIndex + 1
        for payload in payloads {
            log.set(Entry(term: promised.round, index: log.lastIndex + 1, payload: payload))
        }
        for peer in peers.keys.sorted() {
            sendAccepts(from: first, through: log.lastIndex, to: peer)
        }
        return first
    }

    /// Accept messages for slots `first...last` of this leader's log, in
    /// pages of `acceptBytesMax`, each value in this round (a chosen one
    /// re-proposed to an acceptor that lacks it).
    mutating func sendAccepts(from first: LogIndex, through last: LogIndex, to peer: NodeID, pagesMax: Int = .max) {
        var slot = first
        var pages = 0
        while slot <= last && pages < pagesMax {
            var entries: [Entry] = []
            var bytes = 0
            while slot <= last {
                var entry = log.entry(at: slot)!
                precondition(!SlotLog.isVacant(entry), "a leader holds a value in every slot through its last")
                bytes += entry.byteCount
                if !entries.isEmpty && bytes > settings.acceptBytesMax { break }
                entry.term = promised.round
                entries.append(entry)
                slot = slot + 1
            }
            send(.accept(entries: entries, commit: log.committed), to: peer)
            pages += 1
        }
    }

    mutating func handleAccept(_ m: Message, entries: [Entry], commit: LogIndex) {
        let belowPromise = settings.injectedBug == .acceptBelowPromise && m.term < promised.round && role == .follower
        guard belowPromise || admitLeader(m) else { return }
        // Consecutive slots, all in the sender's round: anything else is not an accept.
        var previous: LogIndex? = nil
        for entry in entries {
            guard entry.term == m.term, entry.term > .zero, (entry.index < Self.slotMax),
                previous.map({ entry.index > $0 && entry.index.rawValue - $0.rawValue == 1 }) ?? (entry.index > .zero)
            else { return }
            previous = entry.index
        }
        var first: LogIndex?
        var last = LogIndex.zero
        // What the leader says is chosen first: the window it opened these
        // slots in starts at its commit index, which may be past this one's.
        learnCommit(commit)
        let windowEnd = log.committed + UInt64(settings.slotWindowMax)
        for entry in entries where entry.index > log.committed && entry.index > log.snapshot.index {
            if entry.index > windowEnd { break }
            if log.entry(at: entry.index)?.term != entry.term { log.set(entry) }
            if first == nil { first = entry.index }
            last = entry.index
        }
        if belowPromise {
            // Injected bug: the stale proposer hears its value was accepted, and counts it.
            let last = first == nil ? LogIndex.zero : last
            messagesAfterPersist.append(Message(
                from: id, to: m.from, term: m.term,
                kind: .accepted(first: first ?? 1, last: last, through: log.committed, commit: log.committed)))
            return
        }
        learnCommit(commit)
        send(.accepted(first: first ?? 1, last: first == nil ? .zero : last, through: roundThrough, commit: log.committed), to: m.from)
    }

    /// The last slot such that every slot past the commit index through it
    /// was accepted in this member's promised round.
    var roundThrough: LogIndex {
        var slot = log.committed
        while slot < log.lastIndex, log.entry(at: slot + 1)?.term == promised.round { slot = slot + 1 }
        return slot
    }

    /// The leader says slots through `leaderCommit` are chosen: those this
    /// member accepted in the leader's round hold the chosen value.
    mutating func learnCommit(_ leaderCommit: LogIndex) {
        let to = min(leaderCommit, roundThrough)
        if to > log.committed { commit(to: to) }
    }

    /// Move the commit index, taking up any membership the newly chosen
    /// slots change or that now governs the next slot.
    mutating func commit(to index: LogIndex) {
        let before = log.committed
        log.commit(to: index)
        // A configuration entry moves membership when chosen (at or below
        // `index`) and again when it starts to govern (α slots later).
        if let last = log.configSlots.last, last.rawValue + configurationDelay >= before.rawValue {
            membershipMoved()
        }
    }

    mutating func handleAccepted(_ m: Message, first: LogIndex, last: LogIndex, through: LogIndex, commit: LogIndex) {
        guard role == .leader, m.term == promised.round, var peer = peers[m.from] else { return }
        guard last <= log.lastIndex, through <= log.lastIndex, commit <= through else { return }
        recentlyHeard.insert(m.from)
        let wasHeard = peer.heard
        peer.heard = true
        if first <= last {
            var slot = max(first, log.committed + 1)
            while slot <= last {
                acks[slot, default: []].insert(m.from)
                slot = slot + 1
            }
        }
        if through > peer.through {
            var slot = max(peer.through, log.committed) + 1
            while slot <= through {
                acks[slot, default: []].insert(m.from)
                slot = slot + 1
            }
            peer.through = through
        }
        peers[m.from] = peer
        maybeCommit()
        // An acceptor heard from for the first time in this round that
        // lacks chosen slots, which the first accepts did not carry: fill them now.
        if !wasHeard && peer.through < log.committed { catchUp(m.from) }
    }

    /// Advance the commit index over every slot a quorum of its
    /// configuration accepted in this round, slot by slot: a slot's
    /// configuration reads slots α below it, chosen by then.
    mutating func maybeCommit() {
        let before = log.committed
        // A leader that commits its own removal steps down in the loop; it
        // still tells its acceptors what it chose.
        let acceptors = peers
        while role == .leader, log.committed < log.lastIndex, let set = acks[log.committed + 1],
            configuration(for: log.committed + 1).tally({ set.contains($0) ? true : nil }) == .won
        {
            acks[log.committed + 1] = nil
            commit(to: log.committed + 1)
        }
        guard log.committed > before else { return }
        let to = log.committed
        openSlotsUntilChangesTakeEffect()
        // Tell the acceptors holding the newly chosen slots at once (an
        // accept with no slots carries the commit index), as a Raft leader's
        // next append does: a member answering reads from its own store
        // (serializable ones, watches) is otherwise a heartbeat behind.
        for (peer, progress) in acceptors.sorted(by: { $0.key < $1.key }) where progress.heard && progress.through >= to {
            send(.accept(entries: [], commit: to), to: peer)
        }
    }

    /// Send an acceptor the next page of slots it lacks, or the snapshot
    /// when they were compacted.
    mutating func catchUp(_ peer: NodeID) {
        guard let progress = peers[peer] else { return }
        guard progress.heard else {
            // Answering heartbeats but never an accept in this round: its
            // first accepts were lost, and a follower whose commit index is
            // not behind says nothing else. Send the open slots again.
            if reads.acks[peer] != nil && log.lastIndex > log.committed {
                sendAccepts(from: log.committed + 1, through: log.lastIndex, to: peer, pagesMax: 1)
            }
            return
        }
        if progress.through < log.snapshot.index {
            send(.snapshot(log.snapshot), to: peer)
            return
        }
        guard progress.through < log.lastIndex else { return }
        sendAccepts(from: progress.through + 1, through: log.lastIndex, to: peer, pagesMax: 1)
    }

    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= settings.electionTicks {
            electionElapsed = 0
            transferTarget = nil
            // Check quorum: a leader cut off from a quorum steps down, so
            // its followers' stickiness lapses and clients look elsewhere.
            let heard = recentlyHeard.union([id])
            recentlyHeard = []
            if !Self.quorumOfEach(activeConfigurations, { heard.contains($0) }) {
                becomeFollower(leader: nil)
                resetElectionTimer()
                return
            }
        }
        if heartbeatElapsed >= settings.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// A new heartbeat round: carries the commit index, confirms the reads
    /// waiting for it, and sends again what each acceptor still lacks of
    /// the slots opened before the previous one.
    mutating func broadcastHeartbeat() {
        precondition(role == .leader, "only a leader sends heartbeats")
        reads.round += 1
        reads.recordSent(round: reads.round, tick: ticks)
        for read in reads.unsent { reads.waiting.append((reads.round, read)) }
        reads.unsent.removeAll()
        for peer in peers.keys.sorted() {
            send(.heartbeat(commit: log.committed, round: reads.round), to: peer)
            var progress = peers[peer]!
            let lagging = !progress.heard || progress.through < progress.lastSlotAtPreviousHeartbeat
            progress.lastSlotAtPreviousHeartbeat = log.lastIndex
            peers[peer] = progress
            if lagging { catchUp(peer) }
        }
        confirmReads()
    }

    mutating func handleHeartbeat(_ m: Message, commit: LogIndex, round: UInt64) {
        guard admitLeader(m) else { return }
        learnCommit(commit)
        send(.heartbeatResponse(round: round), to: m.from)
        if log.committed < commit {
            // Behind: say how far, so the leader sends what is missing.
            send(.accepted(first: 1, last: .zero, through: roundThrough, commit: log.committed), to: m.from)
        }
    }

    mutating func handleSnapshot(_ m: Message, metadata: SnapshotMetadata) {
        guard admitLeader(m) else { return }
        if metadata.index > log.committed {
            log.install(metadata)
            snapshotToInstall = metadata
            membershipMoved()
        }
        send(.accepted(first: 1, last: .zero, through: roundThrough, commit: log.committed), to: m.from)
    }

    /// A snapshot records one membership, which must govern every slot
    /// after it: compaction waits while a configuration entry at or below
    /// `index` does not govern `index + 1` yet (at most α slots; a leader
    /// fills them at once).
    public mutating func compact(through index: LogIndex) throws(CompactError) {
        guard index <= log.applied else { throw .notApplied(index: index, applied: log.applied) }
        guard index > log.snapshot.index else { throw .alreadyCompacted(index: index, snapshotIndex: log.snapshot.index) }
        if let k = log.configSlots.last(where: { $0 <= index }), let change = log.configChange(at: k), !governs(change, at: k, index + 1) {
            throw .configurationPending(slot: k, governsFrom: k + configurationDelay + 1)
        }
        log.compact(through: index, membership: membership(at: index))
    }
}
