import Consensus
@_spi(BugInjection) import MultiPaxos
import Testing

extension PaxosCluster {
    /// Deliver only what is in flight to member 2, and lose its answers:
    /// member 2 alone holds the values, and does not know they are chosen,
    /// so a candidate that knows no more than member 2 must read them from
    /// its promise (a member refuses to promise to one that knows less).
    mutating func onlyMemberTwoAcceptsAndNoOneLearnsItChose() {
        let toTwo = network.filter { $0.to == 2 }
        network.removeAll()
        for message in toTwo { deliver(message) }
        network.removeAll()
    }

    /// A few heartbeat intervals of `leader`'s, each delivered in full:
    /// what an acceptor lacks is sent again with them.
    mutating func heartbeats(from leader: NodeID, rounds: Int = 3) {
        for _ in 0..<rounds {
            for _ in 0..<settings.heartbeatTicks { tick(leader) }
            stabilize()
        }
    }
}

@Suite struct PaxosCoreTests {
    @Test func settingsDefaultsAreValidAndLimitsAreChecked() throws {
        _ = try PaxosSettings().validated()
        var settings = PaxosSettings()
        settings.slotWindowMax = PaxosSettings.slotWindowMaxLimit + 1
        #expect(throws: SettingsError.self) { try settings.validated() }
        settings = PaxosSettings()
        settings.heartbeatTicks = settings.electionTicks
        #expect(throws: SettingsError.self) { try settings.validated() }
    }

    @Test func proposalNumbersAdmitHigherRoundsAndTheirOwnProposerOnly() {
        let promised = ProposalNumber(round: 5, proposer: 2)
        #expect(promised.admits(round: 6, from: 3))
        #expect(promised.admits(round: 5, from: 2))
        #expect(!promised.admits(round: 5, from: 3), "a round is promised to one proposer")
        #expect(!promised.admits(round: 4, from: 2))
    }

    /// A founder whose first write tore after its bootstrap slot (the hard
    /// state with its commit lost) restarts with that slot's configuration
    /// in force: it is chosen by construction. Without it the member knew
    /// no members and ignored every peer (simulator seed 39).
    @Test func aFounderRestartedWithOnlyItsBootstrapSlotHearsItsPeers() throws {
        let founders = Membership(voters: [1, 2, 3])
        let bootstrap = Entry(term: 1, index: 1, payload: .configChange(.bootstrap(founders)))
        var core = try PaxosCore(id: 1, settings: PaxosSettings(), seed: 1,
                                 state: DurableState(hardState: HardState(), snapshot: nil, entries: [bootstrap]))
        #expect(core.membership == founders)
        #expect(core.commitIndex == 1)
        core.step(Message(from: 2, to: 1, term: 4, kind: .prepare(firstSlot: 2, handoverRound: .zero)))
        #expect(core.term == 4, "the prepare was heard and promised")
        core.checkInvariants()
    }

    @Test func aLeaderIsElectedAndEveryMemberAppliesTheSameValues() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        #expect(group.leaders == [1])
        for _ in 0..<5 { group.propose(at: 1) }
        group.stabilize()
        group.tick(1)
        group.stabilize()
        for id in group.ids {
            #expect(group.appliedThrough[id] == 6, "member \(id): bootstrap slot and five commands")
        }
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    @Test func anAcceptorTakesSlotsOutOfOrderAndLeavesTheHoleVacant() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        let first = try group.mustPropose(at: 1)
        let second = try group.mustPropose(at: 1)
        // Two accepts in flight to each follower; member 2 gets the later one first.
        let toTwo = group.network.filter { $0.to == 2 }
        #expect(toTwo.count == 2)
        group.network.removeAll { $0.to == 2 }
        group.deliver(toTwo[1])
        let two = try #require(group.cores[2])
        #expect(two.slot(2)?.term == .zero, "slot 2 has nothing accepted yet")
        #expect(two.slot(3)?.payload == .command(second))
        group.deliver(toTwo[0])
        #expect(group.cores[2]?.slot(2)?.payload == .command(first))
        group.stabilize()
        #expect(group.cores[1]?.commitIndex == 3)
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    /// The heart of Paxos: a value a minority accepted may have been chosen,
    /// so a new leader whose phase-1 quorum holds it proposes it again.
    @Test func aNewLeaderRecoversAValueOneAcceptorAcceptedAndFillsHolesWithNoOps() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        let lost = try group.mustPropose(at: 1)  // slot 2: reaches no one
        group.network.removeAll()
        let kept = try group.mustPropose(at: 1)  // slot 3: reaches member 2 only
        group.network.removeAll { $0.to != 2 }
        group.stabilize()
        #expect(group.cores[2]?.slot(3)?.payload == .command(kept))
        group.crash(1)
        group.letElectionTimeoutPass()
        group.campaign(3)
        group.stabilize()
        #expect(group.leaders == [3])
        let three = try #require(group.cores[3])
        #expect(three.slot(2)?.payload == .noop, "no one in the quorum accepted slot 2")
        #expect(three.slot(3)?.payload == .command(kept), "member 2 accepted slot 3: its value is proposed again")
        #expect(three.commitIndex == 3)
        #expect(group.chosen.values.contains(.command(lost)) == false)
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    @Test func aDeposedLeadersAcceptsAreRefusedAndItStepsDown() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        group.campaign(2)
        group.stabilize()
        // Member 3 heard from leader 1 within an election timeout, so it stays with it.
        #expect(group.leaders == [1])
        group.isolated = [1]
        for _ in 0..<100 where group.leaders.allSatisfy({ $0 == 1 }) {
            group.tick(2)
            group.tick(3)
            group.stabilize()
        }
        let newLeader = try #require(group.leaders.first { $0 != 1 })
        group.isolated = []
        group.network.removeAll()
        // The old leader still thinks it leads; its accept meets a higher promise.
        let stale = try group.mustPropose(at: 1)
        group.stabilize()
        #expect(group.cores[1]?.role == .follower)
        #expect(group.cores[newLeader]?.role == .leader)
        #expect(!group.chosen.values.contains(.command(stale)))
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    @Test func phaseOneAnswersArePagedAndStillRecoverEverySlot() throws {
        var settings = PaxosSettings()
        settings.promiseEntriesMax = 2
        var group = try PaxosCluster(members: 3, settings: settings)
        group.campaign(1)
        group.stabilize()
        var commands: [[UInt8]] = []
        for _ in 0..<7 { commands.append(try group.mustPropose(at: 1)) }
        group.onlyMemberTwoAcceptsAndNoOneLearnsItChose()
        group.crash(1)
        group.letElectionTimeoutPass()
        group.campaign(3)
        group.stabilize()
        let three = try #require(group.cores[3])
        #expect(three.role == .leader)
        for (i, command) in commands.enumerated() {
            #expect(three.slot(LogIndex(UInt64(i) + 2))?.payload == .command(command))
        }
        #expect(three.commitIndex == 8)
    }

    @Test func aReadWaitsForAQuorumToConfirmTheRound() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        group.propose(at: 1)
        group.stabilize()
        group.read(at: 1)
        #expect(group.readsServed == 0, "no heartbeat round confirmed yet")
        group.stabilize()
        #expect(group.readsServed == 1)
        group.read(at: 2)  // forwarded to the leader
        group.stabilize()
        #expect(group.readsServed == 2)
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    @Test func theLeaderOpensNoMoreSlotsThanTheWindow() throws {
        var settings = PaxosSettings()
        settings.slotWindowMax = 3
        var group = try PaxosCluster(members: 3, settings: settings)
        group.campaign(1)
        group.stabilize()
        var core = try #require(group.cores[1])
        try core.propose([[1], [2], [3]])
        #expect(throws: ProposeError.windowFull(openSlots: 3, limit: 3)) { try core.propose([[4]]) }
    }

    @Test func aLaggingAcceptorCatchesUpFromASnapshot() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        group.crash(3)
        for _ in 0..<10 { group.propose(at: 1) }
        group.stabilize()
        group.tick(1)
        group.stabilize()
        var one = try #require(group.cores[1])
        try one.compact(through: one.appliedIndex)
        group.cores[1] = one
        try group.restart(3)
        for _ in 0..<3 {
            group.tick(1)
            group.stabilize()
        }
        #expect(group.cores[3]?.commitIndex == group.cores[1]?.commitIndex)
        #expect(group.appliedThrough[3] == group.appliedThrough[1])
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    /// A configuration entry governs slots a window (α) after its own; the
    /// leader fills that window with no-ops at once, so a member added,
    /// then the leader removed, both take effect within one round of
    /// messages, and the group goes on deciding with the new voters.
    @Test func membershipChangesTakeEffectAWindowLaterAndTheGroupGoesOn() throws {
        var settings = PaxosSettings()
        settings.slotWindowMax = 4
        var group = try PaxosCluster(members: 3, settings: settings)
        group.campaign(1)
        group.stabilize()
        var leader = try #require(group.cores[1])
        let slot = try leader.proposeConfigChange(ConfigChange(kind: .change, changes: [.addVoter(4)]))
        #expect(throws: ProposeError.configChangePending(index: slot)) {
            try leader.proposeConfigChange(ConfigChange(kind: .change, changes: [.removeVoter(1)]))
        }
        #expect(leader.configuration(for: slot + 4).voters == [1, 2, 3], "not before α slots")
        #expect(leader.configuration(for: slot + 5).voters == [1, 2, 3, 4])
        group.cores[1] = leader
        group.drain(1)
        try group.join(4)
        group.stabilize()
        group.heartbeats(from: 1)
        leader = try #require(group.cores[1])
        #expect(leader.commitIndex == slot + 4, "the leader filled the window with no-ops, and they were chosen")
        #expect(leader.membership.voters == [1, 2, 3, 4])
        #expect(group.cores[4]?.commitIndex == slot + 4, "the new member learned every chosen slot")
        #expect(throws: CompactError.configurationPending(slot: slot, governsFrom: slot + 5)) {
            var copy = leader
            try copy.compact(through: slot)
        }

        // The leader removes itself: it leads until the change governs, then steps down.
        let removal = try leader.proposeConfigChange(ConfigChange(kind: .change, changes: [.removeVoter(1)]))
        group.cores[1] = leader
        group.drain(1)
        group.stabilize()
        group.heartbeats(from: 1)
        #expect(group.cores[1]?.role == .follower, "a leader no configuration counts as a voter steps down")
        #expect(group.cores[2]?.commitIndex == removal + 4, "it told its acceptors what it chose")
        group.letElectionTimeoutPass()
        group.campaign(2)
        group.stabilize()
        #expect(group.leaders == [2], "the new configuration elects a leader")
        let command = try group.mustPropose(at: 2)
        group.stabilize()
        group.heartbeats(from: 2)
        for id: NodeID in [2, 3, 4] {
            #expect(group.appliedThrough[id] == group.cores[2]?.commitIndex, "member \(id) applied everything chosen")
        }
        #expect(group.chosen.values.contains(.command(command)))
        #expect(group.violations.isEmpty, "\(group.violations)")
    }

    /// A candidate whose phase-1 quorum reports a configuration entry must
    /// also hold a quorum of the configuration that entry makes: its own
    /// configuration's quorum alone might miss a value chosen under the new one.
    @Test func aCandidateAsksTheVotersOfEveryConfigurationItRecovers() throws {
        var settings = PaxosSettings()
        settings.slotWindowMax = 4
        var core = try PaxosCore(id: 1, bootstrap: Membership(voters: [1, 2, 3]), settings: settings, seed: 1)
        core.campaign()
        let prepared = core.ready()
        core.advance(prepared)
        let round = core.term
        // Member 2 promises and reports a configuration entry accepted in slot 2 that adds voters 4 and 5.
        let change = ConfigChange(kind: .change, changes: [.addVoter(4), .addVoter(5)])
        core.step(Message(from: 2, to: 1, term: round, kind: .promise(
            firstSlot: 2, accepted: [Entry(term: 1, index: 2, payload: .configChange(change))], more: false, commit: 1)))
        #expect(core.role == .candidate, "a quorum of {1,2,3} is not a quorum of {1,2,3,4,5}")
        let ready = core.ready()
        core.advance(ready)
        let asked = (ready.messagesNow + ready.messagesAfterPersist).filter {
            if case .prepare = $0.kind { return true } else { return false }
        }.map(\.to)
        #expect(Set(asked) == [4, 5], "the new voters are asked for promises")
        core.step(Message(from: 4, to: 1, term: round, kind: .promise(firstSlot: 2, accepted: [], more: false, commit: 0)))
        #expect(core.role == .leader, "promises from 1, 2 and 4: a quorum of both configurations")
    }

    @Test func aStrangersPrepareTakesNoPromise() throws {
        var group = try PaxosCluster(members: 3)
        group.deliver(Message(from: 9, to: 2, term: 50, kind: .prepare(firstSlot: 2, handoverRound: 1)))
        #expect(group.cores[2]?.promised == .zero)
        #expect(group.network.isEmpty)
    }

    /// Review finding: a new leader whose every first accept was lost, to
    /// followers whose commit index is not behind, sends them again.
    @Test func aNewLeadersLostAcceptsAreSentAgain() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        let value = try group.mustPropose(at: 1)
        group.network.removeAll { $0.to != 2 }
        group.deliver(group.network.removeFirst())  // member 2 accepts slot 2; its answer is lost
        group.network.removeAll()
        group.crash(1)
        group.letElectionTimeoutPass()
        group.campaign(3)
        while !group.network.isEmpty {
            let message = group.network.removeFirst()
            if case .accept = message.kind { continue }  // lost
            group.deliver(message)
        }
        #expect(group.cores[3]?.role == .leader)
        #expect(group.cores[3]?.commitIndex == 1, "nothing chosen while every accept is lost")
        for _ in 0..<3 {
            group.tick(3)
            group.stabilize()
        }
        #expect(group.cores[3]?.commitIndex == 2)
        #expect(group.chosen[2] == .command(value))
    }

    /// Review finding: only acceptors loyal to the round that asked for a
    /// handover waive their stickiness for it.
    @Test func aHandoverWaivesStickinessOnlyForTheRoundThatAskedForIt() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        let round = try #require(group.cores[2]?.term)
        group.deliver(Message(from: 3, to: 2, term: round.next, kind: .prepare(firstSlot: 2, handoverRound: round.next)))
        #expect(group.cores[2]?.term == round, "a handover of another round: member 2 stays with its leader")
        group.deliver(Message(from: 3, to: 2, term: round.next, kind: .prepare(firstSlot: 2, handoverRound: .zero)))
        #expect(group.cores[2]?.term == round, "no handover: member 2 stays with its leader")
        group.deliver(Message(from: 3, to: 2, term: round.next, kind: .prepare(firstSlot: 2, handoverRound: round)))
        #expect(group.cores[2]?.term == round.next, "its own leader's handover: member 2 promises")
    }

    /// Review finding: rounds and slots at the top of the range come from no
    /// real member; they are refused instead of overflowing.
    @Test func roundsAndSlotsAtTheTopOfTheRangeAreRefused() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        group.deliver(Message(from: 3, to: 2, term: Term(UInt64.max), kind: .heartbeat(commit: 1, round: 1)))
        group.deliver(Message(from: 3, to: 2, term: Term(UInt64.max), kind: .preVote(lastIndex: 1, lastTerm: 1)))
        let round = try #require(group.cores[1]?.term)
        group.deliver(Message(from: 1, to: 2, term: round, kind: .accept(entries: [
            Entry(term: round, index: LogIndex(UInt64.max), payload: .noop),
            Entry(term: round, index: LogIndex(UInt64.max), payload: .noop),
        ], commit: 1)))
        group.campaign(2)
        #expect(group.cores[2]?.term == round.next)
    }

    /// Review finding: a page of a promise is bounded in bytes too, so it fits a frame.
    @Test func promisePagesAreBoundedInBytes() throws {
        var settings = PaxosSettings()
        settings.acceptBytesMax = 200
        var group = try PaxosCluster(members: 3, settings: settings)
        group.campaign(1)
        group.stabilize()
        var one = try #require(group.cores[1])
        try one.propose((0..<6).map { _ in [UInt8](repeating: 7, count: 120) })
        group.cores[1] = one
        group.drain(1)
        group.onlyMemberTwoAcceptsAndNoOneLearnsItChose()
        group.crash(1)
        group.letElectionTimeoutPass()
        group.campaign(3)
        var pages = 0
        while !group.network.isEmpty {
            let message = group.network.removeFirst()
            if case .promise(_, let accepted, _, _) = message.kind, message.from == 2 {
                pages += 1
                #expect(accepted.count == 1, "120-byte values, 200 bytes a page: one a page")
            }
            group.deliver(message)
        }
        #expect(pages == 6)
        #expect(group.cores[3]?.role == .leader)
        #expect(group.cores[3]?.commitIndex == 7)
    }

    @Test func leadershipMovesOnRequest() throws {
        var group = try PaxosCluster(members: 3)
        group.campaign(1)
        group.stabilize()
        var one = try #require(group.cores[1])
        try one.transferLeadership(to: 2)
        group.cores[1] = one
        group.drain(1)
        group.stabilize()
        #expect(group.leaders == [2])
        group.propose(at: 2)
        group.stabilize()
        #expect(group.violations.isEmpty, "\(group.violations)")
    }
}
