import Consensus
@testable import Server
import Testing

/// A leader's commit-only appends wait for a later append to carry their
/// news, and go out when the delay ends if none does.
@Suite struct CommitNoticesTests {
    static func append(to follower: NodeID, prev: UInt64, entries: Int, commit: UInt64) -> Consensus.Message {
        let sent = (0..<entries).map { Entry(term: Term(2), index: LogIndex(prev + 1 + UInt64($0)), payload: .command([1])) }
        return Consensus.Message(from: 1, to: follower, term: Term(2),
                                 kind: .append(prevIndex: LogIndex(prev), prevTerm: Term(2), entries: sent, commit: LogIndex(commit)))
    }

    static func heartbeat(to follower: NodeID) -> Consensus.Message {
        Consensus.Message(from: 1, to: follower, term: Term(2), kind: .heartbeat(commit: LogIndex(5), round: 1))
    }

    @Test func aNoticeIsHeldAndReleasedWhole() {
        var notices = CommitNotices()
        let (send, holding) = notices.filter([Self.append(to: 2, prev: 5, entries: 0, commit: 5), Self.heartbeat(to: 3)])
        #expect(send == [Self.heartbeat(to: 3)])
        #expect(holding)
        #expect(notices.release() == [Self.append(to: 2, prev: 5, entries: 0, commit: 5)])
        #expect(notices.release().isEmpty)
    }

    @Test func anAppendWithEntriesCarriesTheNewsOfItsFollowersNoticeOnly() {
        var notices = CommitNotices()
        _ = notices.filter([Self.append(to: 2, prev: 5, entries: 0, commit: 5), Self.append(to: 3, prev: 5, entries: 0, commit: 5)])
        let later = Self.append(to: 2, prev: 5, entries: 3, commit: 5)
        let (send, holding) = notices.filter([later])
        #expect(send == [later])
        #expect(holding)
        #expect(notices.release() == [Self.append(to: 3, prev: 5, entries: 0, commit: 5)])
    }

    /// A follower's forwarded read waits to apply the index it is answered
    /// with: the notice of that commit goes with the answer, not 2 ms later.
    @Test func anAnswerToAForwardedReadTakesItsFollowersNoticeAlong() {
        var notices = CommitNotices()
        _ = notices.filter([Self.append(to: 2, prev: 5, entries: 0, commit: 6), Self.append(to: 3, prev: 5, entries: 0, commit: 6)])
        let answer = Consensus.Message(from: 1, to: 2, term: Term(2), kind: .readIndexResponse(context: 9, index: LogIndex(6)))
        let (send, holding) = notices.filter([answer])
        #expect(send == [Self.append(to: 2, prev: 5, entries: 0, commit: 6), answer])
        #expect(holding)
        #expect(notices.release() == [Self.append(to: 3, prev: 5, entries: 0, commit: 6)])
    }

    @Test func aNewerNoticeReplacesAnOlderOne() {
        var notices = CommitNotices()
        _ = notices.filter([Self.append(to: 2, prev: 5, entries: 0, commit: 5)])
        _ = notices.filter([Self.append(to: 2, prev: 8, entries: 0, commit: 8)])
        #expect(notices.release() == [Self.append(to: 2, prev: 8, entries: 0, commit: 8)])
    }

    @Test func noDelaySendsEverythingAtOnce() {
        var notices = CommitNotices(delay: .zero)
        let messages = [Self.append(to: 2, prev: 5, entries: 0, commit: 5), Self.append(to: 3, prev: 5, entries: 1, commit: 5)]
        let (send, holding) = notices.filter(messages)
        #expect(send == messages)
        #expect(!holding)
        #expect(notices.release().isEmpty)
    }
}
