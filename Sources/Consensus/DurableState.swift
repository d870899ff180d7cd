/// What a member reads back from its disk on restart.
public struct DurableState: Sendable, Equatable {
    public var hardState: HardState
    public var snapshot: SnapshotMetadata?
    /// Entries after the snapshot, in order, without gaps.
    public var entries: [Entry]

    public init(hardState: HardState = HardState(), snapshot: SnapshotMetadata? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }

    public static let empty = DurableState()
}
