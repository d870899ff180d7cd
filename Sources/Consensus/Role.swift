/// What a member currently does in its group.
public enum Role: Sendable, Equatable, CustomStringConvertible {
    case follower
    /// Polling with pre-votes; has not incremented its term.
    case preCandidate
    case candidate
    case leader

    public var description: String {
        switch self {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}
