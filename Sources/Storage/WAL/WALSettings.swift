import Consensus

/// Tunables of the write-ahead log, each with a named default and range.
public struct WALSettings: Sendable, Equatable {
    public static let segmentBytesDefault = 64 << 20
    public static let segmentBytesRange = (64 << 10)...(1 << 30)
    /// Size each segment file is preallocated to; a new one starts when full.
    public var segmentBytes = segmentBytesDefault

    /// The largest record; a bigger length field means corruption.
    public static let recordBytesMax = 128 << 20

    public init() {}
}

/// A snapshot the log records: entries through `index` live in it.
public struct SnapshotMarker: Sendable, Equatable {
    public var index: LogIndex
    public var term: Term
    /// True when the snapshot came from the leader and replaced the whole
    /// log; false for a local snapshot, after which later entries stay.
    public var replacesLog: Bool
    /// The configuration in force at `index`: a member restarting from this
    /// marker no longer holds the entries that built it.
    public var membership: Membership

    public init(index: LogIndex, term: Term, replacesLog: Bool, membership: Membership = .empty) {
        self.index = index
        self.term = term
        self.replacesLog = replacesLog
        self.membership = membership
    }

    public var metadata: SnapshotMetadata { SnapshotMetadata(index: index, term: term, membership: membership) }
}

/// What a write-ahead log held when opened.
public struct WALRecovery: Sendable, Equatable {
    public var hardState = HardState()
    /// The latest snapshot the log records, if any.
    public var snapshot: SnapshotMarker?
    /// Entries after the snapshot, in order, without gaps.
    public var entries: [Entry] = []
    /// Set when a torn record at the tail of the newest segment was cut
    /// off: "file at byte offset", for the operator's log.
    public var truncatedTail: String?
}
