/// Everything the shell must do on behalf of a consensus core, in one value.
///
/// The contract, in the order the shell must honour it:
/// 1. `messagesNow` may be sent at once, in parallel with the write below.
///    They are a leader's appends and heartbeats: a leader counts its own copy
///    only after `advance`, so sending before its own write is safe (Raft
///    thesis §10.2.1).
/// 2. Persist: install `snapshot` if set (the shell already holds its bytes:
///    they came with the `.snapshot` message; installing it discards every
///    stored entry, since the log now starts after it), then write `entries` (any
///    stored entry at or after `entries.first.index` is superseded and must be
///    discarded), then `hardState` if set. When `mustSync` is true these
///    writes must be durable (fsync) before step 3.
/// 3. Send `messagesAfterPersist`. These are votes, vote requests and append
///    acknowledgements: each promises something about durable state, and sent
///    before the write, a crash could take the promise back.
/// 4. Apply `committed` in order, then answer `readStates` once the state
///    machine has applied each one's index. Committed entries are always
///    already durable on this member.
/// 5. Call `advance(_:)` with this value. The shell may `step`, `tick` and
///    `propose` between `ready()` and `advance(_:)`; it must not call
///    `ready()` again before advancing.
public struct Ready: Sendable, Equatable {
    /// Set when term, vote or commit changed since the last persisted value.
    public var hardState: HardState?
    public var entries: [Entry]
    public var snapshot: SnapshotMetadata?
    public var messagesNow: [Message]
    public var messagesAfterPersist: [Message]
    public var committed: [Entry]
    public var readStates: [ReadState]

    public init(
        hardState: HardState? = nil, entries: [Entry] = [], snapshot: SnapshotMetadata? = nil,
        messagesNow: [Message] = [], messagesAfterPersist: [Message] = [],
        committed: [Entry] = [], readStates: [ReadState] = []
    ) {
        self.hardState = hardState
        self.entries = entries
        self.snapshot = snapshot
        self.messagesNow = messagesNow
        self.messagesAfterPersist = messagesAfterPersist
        self.committed = committed
        self.readStates = readStates
    }

    /// True when the write must reach stable storage before step 3. A change
    /// of commit index alone need not be synced: it can be relearned.
    public var mustSync: Bool {
        !entries.isEmpty || snapshot != nil || termOrVoteChanged
    }

    /// Set by the core: whether `hardState` changed term or vote (as opposed
    /// to only the commit index).
    public var termOrVoteChanged = false

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messagesNow.isEmpty
            && messagesAfterPersist.isEmpty && committed.isEmpty && readStates.isEmpty
    }
}
