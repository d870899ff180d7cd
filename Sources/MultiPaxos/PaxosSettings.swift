import Consensus

/// Every tunable of a Multi-Paxos core, each with a named default and a
/// named limit. `validated()` is the only way a core accepts settings.
public struct PaxosSettings: Sendable, Equatable {
    /// How linearizable reads confirm leadership.
    public enum ReadMode: Sendable, Equatable {
        /// One heartbeat round per batch of reads. Safe under any clock behaviour.
        case readIndex
        /// Serve reads while a lease from the last quorum-acknowledged
        /// heartbeat lasts. Correct only if no member's clock runs faster
        /// than `clockDriftBoundPercent` against the leader's: acceptors
        /// refuse to promise a new round for an election timeout after
        /// hearing from their leader, which is what the lease leans on.
        case leaseBased
    }

    public static let electionTicksDefault = 10
    public static let electionTicksRange = 2...1_000
    /// Ticks of leader silence before an acceptor prepares a round of its
    /// own, randomized into [n, 2n) so that two rarely prepare at once.
    public var electionTicks = electionTicksDefault

    public static let heartbeatTicksDefault = 1
    /// Must stay below `electionTicks`, or followers time out between heartbeats.
    public var heartbeatTicks = heartbeatTicksDefault

    public var readMode = ReadMode.readIndex
    public static let clockDriftBoundPercentDefault = 10
    public static let clockDriftBoundPercentMax = 50
    /// The fastest any member's clock may run against the leader's, in
    /// percent. The lease is shortened by this much.
    public var clockDriftBoundPercent = clockDriftBoundPercentDefault

    public static let slotWindowMaxDefault = 4_096
    public static let slotWindowMaxLimit = 1 << 20
    /// Open slots: how far past its commit index a leader proposes, and
    /// past its own commit index an acceptor accepts. Bounds the per-slot
    /// acknowledgement table and what a new leader must recover.
    public var slotWindowMax = slotWindowMaxDefault

    public static let acceptBytesMaxDefault = 1 << 20
    public static let acceptBytesMaxLimit = 64 << 20
    /// Bytes of values in one accept message; one value is always sent even if larger.
    public var acceptBytesMax = acceptBytesMaxDefault

    public static let promiseEntriesMaxDefault = 1_024
    public static let promiseEntriesMaxLimit = 1 << 16
    /// Accepted values in one promise; a proposer asks again for the next page.
    public var promiseEntriesMax = promiseEntriesMaxDefault

    public static let recoverySlotsMaxDefault = 1 << 20
    public static let recoverySlotsMaxLimit = 1 << 24
    /// Slots a new leader may have to recover beyond its commit index; a
    /// candidate that would need more gives its round up (a member less far
    /// behind will win instead).
    public var recoverySlotsMax = recoverySlotsMaxDefault

    public static let entryBytesMaxDefault = (3 << 19) + 4096
    public static let entryBytesMaxLimit = 64 << 20
    /// The largest single value. etcd's default request limit (1.5 MiB) plus framing.
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
    /// Bytes of chosen values handed out in one `Ready`.
    public var applyBytesMax = applyBytesMaxDefault

    /// A deliberately broken behaviour for proving that checkers catch it.
    /// Reachable only through the `BugInjection` SPI: the server never sets it.
    @_spi(BugInjection) public var injectedBug: PaxosBug?

    public init() {}

    /// The settings, or the first reason they cannot work.
    public func validated() throws(SettingsError) -> PaxosSettings {
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws(SettingsError) {
            if !range.contains(value) { throw .outOfRange(name: name, value: value, range: range) }
        }
        try check("electionTicks", electionTicks, Self.electionTicksRange)
        try check("heartbeatTicks", heartbeatTicks, 1...(electionTicks - 1))
        try check("clockDriftBoundPercent", clockDriftBoundPercent, 0...Self.clockDriftBoundPercentMax)
        try check("slotWindowMax", slotWindowMax, 1...Self.slotWindowMaxLimit)
        try check("acceptBytesMax", acceptBytesMax, 1...Self.acceptBytesMaxLimit)
        try check("promiseEntriesMax", promiseEntriesMax, 1...Self.promiseEntriesMaxLimit)
        try check("recoverySlotsMax", recoverySlotsMax, slotWindowMax...Self.recoverySlotsMaxLimit)
        try check("entryBytesMax", entryBytesMax, 1...Self.entryBytesMaxLimit)
        try check("proposalBatchMax", proposalBatchMax, 1...Self.proposalBatchMaxLimit)
        try check("pendingReadsMax", pendingReadsMax, 1...Self.pendingReadsMaxLimit)
        try check("applyBytesMax", applyBytesMax, 1...Self.applyBytesMaxLimit)
        return self
    }

    /// Ticks a lease lasts after the heartbeat round that granted it was
    /// sent: acceptors stay sticky for `electionTicks` of their own ticks,
    /// at least `electionTicks - 1` of them after receipt, each at least
    /// (100 - drift)% of the leader's.
    var leaseTicks: Int { (electionTicks - 1) * (100 - clockDriftBoundPercent) / 100 }
}

/// Bugs the tests inject to prove each checker bites.
@_spi(BugInjection)
public enum PaxosBug: String, Sendable, Equatable, CaseIterable {
    /// An acceptor accepts a value in a lower round after promising a higher one.
    case acceptBelowPromise = "accept-below-promise"
    /// A new leader proposes its own values in slots without recovering
    /// what its phase-1 quorum accepted there.
    case skipRecovery = "skip-recovery"
    /// A leader answers a read at once, with neither a lease nor a confirmed round.
    case readWithoutConfirmation = "read-without-confirmation"
}
