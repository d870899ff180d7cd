import Consensus
import Raft
import Testing

@Suite struct RaftCoreTests {
    static func founders(_ n: UInt64, settings: RaftSettings = RaftSettings()) throws -> [RaftCore] {
        let ids = Set((1...n).map { NodeID($0) })
        return try ids.sorted().map { try RaftCore(id: $0, bootstrap: Membership(voters: ids), settings: settings, seed: 1) }
    }

    /// Deliver everything until quiet; returns every Ready seen.
    @discardableResult
    static func stabilize(_ cores: inout [RaftCore]) -> [Ready] {
        var seen: [Ready] = []
        for _ in 0..<100 {
            var messages: [Message] = []
            for i in cores.indices where cores[i].hasReady {
                let ready = cores[i].ready()
                seen.append(ready)
                messages += ready.messagesNow + ready.messagesAfterPersist
                cores[i].advance(ready)
            }
            if messages.isEmpty { return seen }
            for m in messages { cores[Int(m.to.rawValue - 1)].step(m) }
        }
        Issue.record("did not stabilize")
        return seen
    }

    @Test func settingsDefaultsAreValidAndLimitsAreChecked() throws {
        _ = try RaftSettings().validated()
        var lease = RaftSettings()
        lease.readMode = .leaseBased
        lease.checkQuorum = false
        #expect(throws: SettingsError.leaseWithoutCheckQuorum) { try lease.validated() }
        var window = RaftSettings()
        window.inflightMessagesMax = RaftSettings.inflightMessagesMaxLimit + 1
        #expect(throws: SettingsError.self) { try window.validated() }
    }

    @Test func votesAndAcksWaitForPersistence() throws {
        var cores = try Self.founders(3)
        cores[0].campaign()
        let readies = Self.stabilize(&cores)
        for ready in readies {
            for m in ready.messagesNow {
                switch m.kind {
                case .append, .heartbeat, .snapshot, .timeoutNow, .readIndex, .readIndexResponse: break
                default: Issue.record("\(m) must wait for persistence")
                }
            }
            if ready.messagesAfterPersist.contains(where: { if case .voteResponse(true) = $0.kind { true } else { false } }) {
                #expect(ready.hardState?.vote != nil && ready.mustSync, "a granted vote travels with the durable vote")
            }
        }
        #expect(cores[0].role == .leader)
    }

    @Test func restartRestoresMembershipCommitAndLog() throws {
        var cores = try Self.founders(3)
        cores[0].campaign()
        Self.stabilize(&cores)
        try cores[0].propose([Array("x".utf8)])
        Self.stabilize(&cores)
        let c = cores[1]
        var entries: [Entry] = []
        var i = c.firstIndex
        while i <= c.lastIndex { entries.append(c.entry(at: i)!); i = i + 1 }
        let restarted = try RaftCore(id: c.id, settings: RaftSettings(), seed: 9, state: DurableState(hardState: c.hardState, entries: entries))
        #expect(restarted.membership == c.membership)
        #expect(restarted.commitIndex == c.commitIndex)
        #expect(restarted.lastIndex == c.lastIndex)
        #expect(restarted.term == c.term)
        #expect(restarted.role == .follower)
    }

    @Test func followersRefuseWorkAndNameTheLeader() throws {
        var cores = try Self.founders(3)
        cores[0].campaign()
        Self.stabilize(&cores)
        #expect(throws: ProposeError.notLeader(leaderHint: 1)) { try cores[1].propose([[1]]) }
        // Reads are the exception: a follower forwards them (testdata/read_forwarded.txt).
        #expect(throws: TransferError.notLeader(leaderHint: 1)) { try cores[2].transferLeadership(to: 2) }
        #expect(throws: CompactError.alreadyCompacted(index: 0, snapshotIndex: 0)) { try cores[1].compact(through: 0) }
    }

    /// A follower holds at most `pendingReadsMax` forwarded reads: past
    /// that it forgets the oldest (whose answer it then drops, and whose
    /// caller times out) rather than refusing reads for the rest of the
    /// term because some message was lost.
    @Test func aFollowerForgetsItsOldestForwardedReadWhenFull() throws {
        var settings = RaftSettings()
        settings.pendingReadsMax = 2
        var cores = try Self.founders(3, settings: settings)
        cores[0].campaign()
        Self.stabilize(&cores)
        for context in UInt64(10)...12 { try cores[1].readIndex(context: context, mayUseLease: true) }
        let answered = Self.stabilize(&cores).filter { !$0.readStates.isEmpty }.flatMap(\.readStates)
        #expect(answered.map(\.context) == [11, 12])
        #expect(answered.allSatisfy { $0.index == cores[0].commitIndex })
        // Lost answers do not wedge it: a thousand more, each answered.
        for context in UInt64(100)..<1_100 {
            try cores[1].readIndex(context: context, mayUseLease: true)
            #expect(Self.stabilize(&cores).flatMap(\.readStates).map(\.context) == [context])
        }
    }

    /// A member hears only members of its configuration: a stranger's
    /// higher-term messages (a removed member's, a forged ID's) neither
    /// raise its term nor depose its leader, and a learner's vote request
    /// is not a voter's. The same message from a member does depose it,
    /// so the check is what keeps the leader.
    @Test func strangersAndNonVotersAreNotHeard() throws {
        let ids: Set<NodeID> = [1, 2, 3]
        var cores = try (ids.sorted() + [4]).map { try RaftCore(id: $0, bootstrap: Membership(voters: ids, learners: [4]), settings: RaftSettings(), seed: 1) }
        cores[0].campaign()
        Self.stabilize(&cores)
        try #require(cores[0].role == .leader && cores[0].term == 2)
        let stranger = NodeID(99)
        let high = Term(50)
        for kind: Message.Kind in [.appendResponse(reject: false, index: 1, hintIndex: .zero, hintTerm: .zero), .heartbeatResponse(round: 1),
                                   .voteResponse(granted: true), .preVoteResponse(granted: true), .readIndex(context: 1), .timeoutNow,
                                   .vote(lastIndex: 100, lastTerm: high, transfer: true), .preVote(lastIndex: 100, lastTerm: high)] {
            cores[0].step(Message(from: stranger, to: 1, term: high, kind: kind))
            cores[1].step(Message(from: stranger, to: 2, term: high, kind: kind))
        }
        // A learner asking for votes, even as a transfer target.
        cores[1].step(Message(from: 4, to: 2, term: high, kind: .vote(lastIndex: 100, lastTerm: high, transfer: true)))
        #expect(cores[0].role == .leader && cores[0].term == 2)
        #expect(cores[1].role == .follower && cores[1].term == 2 && cores[1].leader == 1)
        #expect(!cores[1].hasReady || cores[1].ready().messagesAfterPersist.isEmpty)
        // A member's higher term does depose the leader.
        cores[0].step(Message(from: 3, to: 1, term: high, kind: .heartbeatResponse(round: 1)))
        #expect(cores[0].role == .follower && cores[0].term == high)
    }

    @Test func aLearnerNeverCampaigns() throws {
        let membership = Membership(voters: [1], learners: [2])
        var learner = try RaftCore(id: 2, bootstrap: membership, settings: RaftSettings(), seed: 1)
        for _ in 0..<100 { learner.tick() }
        learner.campaign()
        #expect(learner.role == .follower)
        #expect(learner.term == 1)
    }

    @Test func singleMemberCommitsOnItsOwnFsync() throws {
        var cores = try Self.founders(1)
        cores[0].campaign()
        Self.stabilize(&cores)
        #expect(cores[0].role == .leader)
        let index = try cores[0].propose([Array("solo".utf8)])
        #expect(cores[0].commitIndex < index, "nothing commits before the leader's own write")
        Self.stabilize(&cores)
        #expect(cores[0].commitIndex == index)
        try cores[0].readIndex(context: 5, mayUseLease: true)
        let ready = cores[0].ready()
        #expect(ready.readStates == [ReadState(context: 5, index: index)])
    }

    /// `membership(at:)` answers from the configurations recorded as they
    /// took effect: at every index, before and after a compaction, it is
    /// what folding the log's configuration entries gives.
    @Test func membershipAtEveryIndexMatchesTheLog() throws {
        var core = try Self.founders(1)[0]
        core.campaign()
        func settle() {
            // A lone voter: its learners are not running; what it sends them is dropped.
            while core.hasReady { core.advance(core.ready()) }
        }
        settle()
        #expect(core.role == .leader)
        var expected: [LogIndex: Membership] = [:]
        var current = core.membership
        for step in 0..<6 {
            for i in 0..<5 {
                let index = try core.propose([Array("\(step)-\(i)".utf8)])
                settle()
                expected[index] = current
            }
            if step < 3 {
                let change = ConfigChange(kind: .change, changes: [.addLearner(NodeID(UInt64(10 + step)))])
                let index = try core.proposeConfigChange(change)
                settle()
                current = try change.applied(to: current).get()
                expected[index] = current
            }
        }
        #expect(core.membership.learners.count == 3)
        for (index, membership) in expected { #expect(core.membership(at: index) == membership, "at \(index)") }
        let middle = expected.keys.sorted()[expected.count / 2]
        try core.compact(through: middle)
        for (index, membership) in expected where index >= middle {
            #expect(core.membership(at: index) == membership, "after compaction, at \(index)")
        }
        core.checkInvariants()
    }

    @Test func deterministicRandomReplays() {
        var a = DeterministicRandom(seed: 5)
        var b = DeterministicRandom(seed: 5)
        var c = DeterministicRandom(seed: 6)
        let xs = (0..<8).map { _ in a.next() }
        #expect(xs == (0..<8).map { _ in b.next() })
        #expect(xs != (0..<8).map { _ in c.next() })
    }
}
