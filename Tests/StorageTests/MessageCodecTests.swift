import Consensus
import Storage
import Testing

/// Consensus messages between members, in the WAL's codec: every kind reads
/// back as written, and bytes cut short or run long are refused (a peer's
/// frame is decoded with this; a bad one must not become a message).
@Suite struct MessageCodecTests {
    static let membership = Membership(voters: [1, 2, 3], learners: [4])
    static let kinds: [Message.Kind] = [
        .preVote(lastIndex: 7, lastTerm: 2),
        .preVoteResponse(granted: true),
        .vote(lastIndex: 7, lastTerm: 2, transfer: true),
        .voteResponse(granted: false),
        .append(prevIndex: 6, prevTerm: 2, entries: [Entry(term: 3, index: 7, payload: .noop)], commit: 5),
        .appendResponse(reject: true, index: 6, hintIndex: 4, hintTerm: 1),
        .heartbeat(commit: 5, round: 9),
        .heartbeatResponse(round: 9),
        .snapshot(SnapshotMetadata(index: 100, term: 3, membership: membership)),
        .timeoutNow,
        .readIndex(context: 0xDEAD_BEEF_0000_0001),
        .readIndexResponse(context: 0xDEAD_BEEF_0000_0001, index: 42),
        .prepare(firstSlot: 12, handoverRound: 11),
        .promise(firstSlot: 12, accepted: [Entry(term: 2, index: 12, payload: .command([1, 2])), Entry(term: 3, index: 14, payload: .noop)], more: true, commit: 11),
        .accept(entries: [Entry(term: 3, index: 15, payload: .command([9]))], commit: 11),
        .accepted(first: 15, last: 15, through: 13, commit: 11),
        .nack,
    ]

    @Test(arguments: kinds.indices)
    func everyKindReadsBackAsWritten(_ i: Int) throws {
        let message = Message(from: 2, to: 1, term: 3, kind: Self.kinds[i])
        let bytes = ConsensusCodec.encode(message)
        #expect(ConsensusCodec.decodeMessage(bytes) == message)
        #expect(ConsensusCodec.decodeMessage(Array(bytes.dropLast())) == nil, "\(message) cut short")
        #expect(ConsensusCodec.decodeMessage(bytes + [0]) == nil, "\(message) with a byte too many")
    }
}
