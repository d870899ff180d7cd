/// The interface every consensus core offers its shell. Cores are pure
/// values: time arrives only through `tick()`, the network only through
/// `step(_:)`, and every effect leaves through `ready()`. The shell owns all
/// I/O and follows the contract written on `Ready`.
public protocol ConsensusEngine: Sendable {
    var id: NodeID { get }
    var role: Role { get }
    var term: Term { get }
    /// The leader this member currently follows, if it knows one.
    var leader: NodeID? { get }
    /// The configuration in force: the last one committed.
    var membership: Membership { get }
    var commitIndex: LogIndex { get }
    var lastIndex: LogIndex { get }
    /// The last entry handed to the shell to apply and acknowledged by `advance`.
    var appliedIndex: LogIndex { get }
    /// The snapshot the log starts after.
    var snapshotMetadata: SnapshotMetadata { get }
    /// Assert the engine's internal invariants (tests and the simulator call it after each step).
    func checkInvariants()
    /// The configuration in force once entries through `index` are
    /// committed: what a snapshot taken at `index` records.
    func membership(at index: LogIndex) -> Membership

    /// One unit of logical time. Timeouts are counted in ticks.
    mutating func tick()
    /// Deliver a message from a peer. Stale, duplicate and misaddressed
    /// messages are ignored, never fatal.
    mutating func step(_ message: Message)
    /// Append commands to the log (leader only). Returns the index of the first.
    @discardableResult
    mutating func propose(_ commands: [[UInt8]]) throws(ProposeError) -> LogIndex
    @discardableResult
    mutating func proposeConfigChange(_ change: ConfigChange) throws(ProposeError) -> LogIndex
    /// Ask for a read index; it arrives as a `ReadState` tagged `context`.
    /// `mayUseLease`: the read may be confirmed by a leader lease, where
    /// the engine keeps one, instead of a round of messages (it then rests
    /// on the engine's clock-drift bound).
    mutating func readIndex(context: UInt64, mayUseLease: Bool) throws(ReadIndexError)
    mutating func transferLeadership(to target: NodeID) throws(TransferError)
    /// Start an election now (used at bootstrap and by operators).
    mutating func campaign()
    /// Forget entries through `index`, which the shell has captured in a
    /// snapshot of its state machine.
    mutating func compact(through index: LogIndex) throws(CompactError)

    var hasReady: Bool { get }
    mutating func ready() -> Ready
    mutating func advance(_ ready: Ready)
}
