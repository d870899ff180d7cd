import Consensus
import Testing

@Suite struct MembershipTests {
    let one = NodeID(1), two = NodeID(2), three = NodeID(3), four = NodeID(4), five = NodeID(5)

    @Test func simpleMajority() {
        let m = Membership(voters: [one, two, three])
        #expect(m.tally { $0 == one ? true : nil } == .pending)
        #expect(m.tally { $0 == three ? nil : true } == .won)
        #expect(m.tally { $0 == one ? true : false } == .lost)
        #expect(m.quorumIndex { [one: 9, two: 5, three: 1][$0]! } == 5)
    }

    @Test func jointNeedsBothHalves() {
        // Old {1,2,3}, new {3,4,5}: 1,2 alone win the old half, not the new one.
        let m = Membership(voters: [three, four, five], outgoingVoters: [one, two, three])
        #expect(m.isJoint)
        #expect(m.tally { [one, two].contains($0) ? true : nil } == .pending)
        #expect(m.tally { [one, two, four, five].contains($0) ? true : nil } == .won)
        #expect(m.tally { [four, five].contains($0) ? false : nil } == .lost)
        let acked: [NodeID: LogIndex] = [one: 10, two: 10, three: 3, four: 2, five: 1]
        #expect(m.quorumIndex { acked[$0]! } == 2, "the new half holds only index 2 on a majority")
    }

    @Test func learnersNeverCount() {
        let m = Membership(voters: [one], learners: [two, three])
        #expect(m.tally { $0 == one ? true : false } == .won)
        #expect(!m.isVoter(two))
        #expect(m.allMembers == [one, two, three])
    }

    @Test func voterChangesEnterJointLearnerChangesDoNot() throws {
        let m = Membership(voters: [one, two, three])
        let learner = try ConfigChange(kind: .change, changes: [.addLearner(four)]).applied(to: m).get()
        #expect(!learner.isJoint)
        #expect(learner.learners == [four])
        let promoted = try ConfigChange(kind: .change, changes: [.promoteLearner(four)]).applied(to: learner).get()
        #expect(promoted.isJoint)
        #expect(promoted.outgoingVoters == [one, two, three])
        #expect(promoted.voters == [one, two, three, four])
        #expect(promoted.learners.isEmpty)
        let left = try ConfigChange.leaveJoint.applied(to: promoted).get()
        #expect(!left.isJoint && left.voters == [one, two, three, four])
    }

    @Test func invalidChangesAreRefusedWithReasons() {
        let m = Membership(voters: [one])
        #expect(ConfigChange(kind: .change, changes: [.removeVoter(one)]).applied(to: m) == .failure(.noVotersLeft))
        #expect(ConfigChange(kind: .change, changes: [.addVoter(one)]).applied(to: m) == .failure(.alreadyVoter(one)))
        #expect(ConfigChange(kind: .change, changes: [.removeVoter(two)]).applied(to: m) == .failure(.notMember(two)))
        #expect(ConfigChange.leaveJoint.applied(to: m) == .failure(.notJoint))
        let joint = Membership(voters: [one, two], outgoingVoters: [one])
        #expect(ConfigChange(kind: .change, changes: [.addLearner(three)]).applied(to: joint) == .failure(.alreadyJoint))
        #expect(ConfigChangeError.noVotersLeft.description.contains("at least one"))
    }
}
