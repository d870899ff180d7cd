/// One record of the replicated log.
public struct Entry: Sendable, Equatable, CustomStringConvertible {
    public var term: Term
    public var index: LogIndex
    public var payload: Payload

    public init(term: Term, index: LogIndex, payload: Payload) {
        self.term = term
        self.index = index
        self.payload = payload
    }

    /// What an entry carries. The state machine sees only `.command`; the
    /// others belong to the consensus layer and are skipped by appliers.
    public enum Payload: Sendable, Equatable {
        /// Opaque bytes for the state machine.
        case command([UInt8])
        /// Appended by every new leader: an entry of its own term lets it
        /// commit everything before it (Raft §5.4.2, §8).
        case noop
        /// A membership change; takes effect when committed.
        case configChange(ConfigChange)
    }

    /// Bytes this entry counts against size limits: its command bytes plus a
    /// fixed overhead, so that empty entries are not free.
    public var byteCount: Int {
        switch payload {
        case .command(let bytes): bytes.count + Self.overheadBytes
        case .noop: Self.overheadBytes
        case .configChange(let change): change.changes.count * 16 + Self.overheadBytes
        }
    }

    public static let overheadBytes = 24

    public var description: String {
        switch payload {
        case .command(let bytes): "\(term)/\(index) cmd(\(bytes.count)B)"
        case .noop: "\(term)/\(index) noop"
        case .configChange(let change): "\(term)/\(index) conf(\(change))"
        }
    }
}
