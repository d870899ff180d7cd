/// Identifies a state-machine snapshot: it reflects every entry through
/// `index` (whose term is `term`) and the membership in force at that point.
/// The snapshot's bytes never pass through the core: the shell stores and
/// streams them, so a multi-gigabyte snapshot costs the core nothing.
public struct SnapshotMetadata: Sendable, Equatable, CustomStringConvertible {
    public var index: LogIndex
    public var term: Term
    public var membership: Membership

    public init(index: LogIndex, term: Term, membership: Membership) {
        self.index = index
        self.term = term
        self.membership = membership
    }

    public static let empty = SnapshotMetadata(index: .zero, term: .zero, membership: .empty)

    public var description: String { "snapshot(\(term)/\(index) \(membership))" }
}
