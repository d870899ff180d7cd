import Consensus

/// Every tunable of a Raft core, each with a named default and a named limit.
/// `validated()` is the only way a core accepts settings.
public struct RaftSettings: Sendable, Equatable {
    /// How linearizable reads confirm leadership.
    public enum ReadMode: Sendable, Equatable {
        /// One heartbeat round per batch of reads. Safe under any clock behaviour.
        case readIndex
        /// Serve reads while a lease from the last quorum-acknowledged
        /// heartbeat lasts. Saves a round trip; correct only if no member's
        /// clock runs faster than `clockDriftBoundPercent` against the
        /// leader's, and only with `checkQuorum`.
        case leaseBased
    }

    public static let electionTicksDefault = 10
    public static let electionTicksRange = 2...1_000
    /// Ticks of leader silence before a follower campaigns, randomized into
    /// [n, 2n) so that two followers rarely campaign in the same tick.
    public var electionTicks = electionTicksDefault

    public static let heartbeatTicksDefault = 1
    /// Must stay below `electionTicks`, or followers time out between heartbeats.
    public var heartbeatTicks = heartbeatTicksDefault

    /// Poll before campaigning, so a member that was cut off cannot raise the
    /// term on rejoining and depose a healthy leader (Raft thesis §9.6).
    public var preVote = true
    /// A leader that has not heard from a quorum for an election timeout
    /// steps down; followers that hear from a leader ignore campaigns for an
    /// election timeout (leader stickiness).
    public var checkQuorum = true

    public var readMode = ReadMode.readIndex
    public static let clockDriftBoundPercentDefault = 10
    public static let clockDriftBoundPercentMax = 50
    /// The fastest any member's clock may run against the leader's, in
    /// percent. The lease is shortened by this much.
    public var clockDriftBoundPercent = clockDriftBoundPercentDefault

    public static let appendBytesMaxDefault = 1 << 20
    public static let appendBytesMaxLimit = 64 << 20
    /// Bytes of entries in one append message; one entry is always sent even if larger.
    public var appendBytesMax = appendBytesMaxDefault

    public static let inflightMessagesMaxDefault = 256
    public static let inflightMessagesMaxLimit = 16_384
    /// Append messages a leader keeps unacknowledged per follower.
    public var inflightMessagesMax = inflightMessagesMaxDefault

    public static let uncommittedBytesMaxDefault = 64 << 20
    public static let uncommittedBytesMaxLimit = 4 << 30
    /// Bytes a leader accepts beyond its commit index before refusing proposals.
    public var uncommittedBytesMax = uncommittedBytesMaxDefault

    public static let entryBytesMaxDefault = (3 << 19) + 4096
    public static let entryBytesMaxLimit = 64 << 20
    /// The largest single entry. etcd's default request limit (1.5 MiB) plus framing.
    public var entryBytesMax = entryBytesMaxDefault

    public static let proposalBatchMaxDefault = 16_384
    public static let proposalBatchMaxLimit = 1 << 20
    /// Commands in one `propose` call.
    public var proposalBatchMax = proposalBatchMaxDefault

    public static let pendingReadsMaxDefault = 16_384
    public static let pendingReadsMaxLimit = 1 << 20
    /// Reads waiting for leadership confirmation.
    public var pendingReadsMax = pendingReadsMaxDefault

    public static let applyBytesMaxDefault = 64 << 20
    public static let applyBytesMaxLimit = 1 << 30
    /// Bytes of committed entries handed out in one `Ready`.
    public var applyBytesMax = applyBytesMaxDefault

    /// A deliberately broken behaviour for proving that checkers catch it.
    /// Reachable only through the `BugInjection` SPI: the server never sets it.
    @_spi(BugInjection) public var injectedBug: InjectedBug?

    public init() {}

    /// The settings, or the first reason they cannot work.
    public func validated() throws(SettingsError) -> RaftSettings {
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws(SettingsError) {
            if !range.contains(value) { throw .outOfRange(name: name, value: value, range: range) }
        }
        try check("electionTicks", electionTicks, Self.electionTicksRange)
        try check("heartbeatTicks", heartbeatTicks, 1...(electionTicks - 1))
        try check("clockDriftBoundPercent", clockDriftBoundPercent, 0...Self.clockDriftBoundPercentMax)
        try check("appendBytesMax", appendBytesMax, 1...Self.appendBytesMaxLimit)
        try check("inflightMessagesMax", inflightMessagesMax, 1...Self.inflightMessagesMaxLimit)
        try check("uncommittedBytesMax", uncommittedBytesMax, 1...Self.uncommittedBytesMaxLimit)
        try check("entryBytesMax", entryBytesMax, 1...Self.entryBytesMaxLimit)
        try check("proposalBatchMax", proposalBatchMax, 1...Self.proposalBatchMaxLimit)
        try check("pendingReadsMax", pendingReadsMax, 1...Self.pendingReadsMaxLimit)
        try check("applyBytesMax", applyBytesMax, 1...Self.applyBytesMaxLimit)
        if readMode == .leaseBased && !checkQuorum { throw .leaseWithoutCheckQuorum }
        return self
    }

    /// Ticks a lease lasts after the heartbeat round that granted it was sent.
    /// A follower stays sticky for `electionTicks` of its own ticks after
    /// receipt, but its first tick may come right after receipt: it is
    /// sticky for at least `electionTicks - 1` of its periods, each at least
    /// (100 - drift)% of the leader's.
    var leaseTicks: Int { (electionTicks - 1) * (100 - clockDriftBoundPercent) / 100 }
}

/// Bugs the simulator's tests inject to prove each checker bites.
@_spi(BugInjection)
public enum InjectedBug: String, Sendable, Equatable, CaseIterable {
    /// Grant a vote even after voting for someone else in the same term.
    case doubleVote = "double-vote"
    /// Commit an entry of an earlier term by counting its replicas (Raft §5.4.2's trap).
    case commitOldTerm = "commit-old-term"
    /// A follower keeps its conflicting suffix instead of truncating it.
    case keepConflict = "keep-conflict"
    /// Answer ReadIndex at once from the local commit index, with no heartbeat round.
    case readWithoutQuorum = "read-without-quorum"
    /// Answer a follower's forwarded read at once from the local commit
    /// index: no quorum, not even an entry of the leader's own term committed.
    case forwardedReadWithoutQuorum = "forwarded-read-without-quorum"
}
