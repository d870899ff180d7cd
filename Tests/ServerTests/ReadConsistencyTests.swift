import Consensus
import NIOCore
import NIOHPACK
@testable import Server
import Testing

/// How a read's consistency is chosen from etcd's flag and Ballot's
/// metadata, and how a member judges its own freshness against a bound.
@Suite struct ReadConsistencyTests {
    typealias Requested = ReadConsistency.Requested

    static func choose(_ requested: Requested, serializable: Bool = false) throws(ReadConsistencyError) -> ReadConsistency {
        try ReadConsistency.choose(requested, serializable: serializable, electionMilliseconds: 1000)
    }

    @Test func etcdsFlagDecidesWithoutMetadataAndTheMetadataOverridesIt() throws {
        #expect(try Self.choose(.none) == .linearizable)
        #expect(try Self.choose(.none, serializable: true) == .serializable)
        #expect(try Self.choose(Requested(level: "linearizable"), serializable: true) == .linearizable)
        #expect(try Self.choose(Requested(level: "lease")) == .lease)
        #expect(try Self.choose(Requested(level: "serializable")) == .serializable)
        #expect(try Self.choose(Requested(level: "bounded", milliseconds: "250")) == .boundedStaleness(StalenessBound(milliseconds: 250, revisions: 0)))
        #expect(try Self.choose(Requested(level: "bounded", milliseconds: "250", revisions: "7")) == .boundedStaleness(StalenessBound(milliseconds: 250, revisions: 7)))
        // Revisions alone: the election timeout bounds the proof's age.
        #expect(try Self.choose(Requested(level: "bounded", revisions: "3")) == .boundedStaleness(StalenessBound(milliseconds: 1000, revisions: 3)))
    }

    @Test func headersGiveTheFirstValueOfEachKey() {
        let headers = HPACKHeaders([(":path", "/etcdserverpb.KV/Range"), ("ballot-consistency", "bounded"), ("ballot-max-staleness-ms", "9"),
                                    ("ballot-consistency", "lease"), ("ballot-verified-client-cn", "x")])
        #expect(Requested(headers) == Requested(level: "bounded", milliseconds: "9"))
        #expect(Requested(HPACKHeaders([(":path", "/etcdserverpb.KV/Range")])) == .none)
    }

    @Test func badMetadataIsRefusedAsInvalid() {
        let refused: [(Requested, ReadConsistencyError)] = [
            (Requested(level: "strong"), .unknownLevel("strong")),
            (Requested(level: "bounded"), .boundedWithoutBound),
            (Requested(level: "bounded", milliseconds: "-1"), .badBound(key: ReadConsistency.millisecondsKey, value: "-1", max: StalenessBound.millisecondsMax)),
            (Requested(level: "bounded", milliseconds: "86400001"), .badBound(key: ReadConsistency.millisecondsKey, value: "86400001", max: StalenessBound.millisecondsMax)),
            (Requested(level: "bounded", revisions: "x"), .badBound(key: ReadConsistency.revisionsKey, value: "x", max: StalenessBound.revisionsMax)),
            (Requested(level: "lease", milliseconds: "5"), .boundWithoutBoundedLevel),
            (Requested(milliseconds: "5"), .boundWithoutBoundedLevel),
        ]
        for (requested, error) in refused {
            #expect(throws: error) { try Self.choose(requested) }
            #expect(error.rpcError.code == .invalidArgument)
        }
        let stale = ReadConsistencyError.stale(bound: StalenessBound(milliseconds: 5, revisions: 0), confirmedAgoMilliseconds: nil, entriesBehind: 0)
        #expect(stale.rpcError.code == .unavailable)
    }

    @Test func freshnessIsTheNewestAnchorItsAgeAndWhatIsLeftToApply() {
        let freshness = ReadFreshness()
        let start = NIODeadline.now()
        let bound = StalenessBound(milliseconds: 100, revisions: 2)
        #expect(!freshness.meets(bound, applied: LogIndex(1_000), now: start), "no proof yet")
        freshness.confirmed(LogIndex(50), askedAt: start)
        #expect(freshness.meets(bound, applied: LogIndex(48), now: start + .milliseconds(100)))
        #expect(!freshness.meets(bound, applied: LogIndex(47), now: start + .milliseconds(100)), "three entries behind")
        #expect(!freshness.meets(bound, applied: LogIndex(50), now: start + .milliseconds(101)), "too old")
        // An answer to an earlier question does not replace a later one.
        freshness.confirmed(LogIndex(40), askedAt: start - .milliseconds(10))
        #expect(freshness.anchor == ReadFreshness.Anchor(askedAt: start, index: LogIndex(50)))
        freshness.confirmed(LogIndex(60), askedAt: start + .milliseconds(80))
        #expect(freshness.meets(bound, applied: LogIndex(58), now: start + .milliseconds(150)))
        // One background refresh at a time.
        #expect(freshness.startRefresh())
        #expect(!freshness.startRefresh())
        freshness.refreshed()
        #expect(freshness.startRefresh())
    }
}
