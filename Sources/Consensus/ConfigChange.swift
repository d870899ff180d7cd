/// A membership change as it travels through the log.
///
/// Any change to the voter set goes through joint consensus: the entry that
/// carries `changes` moves the group into the joint configuration (old and
/// new voters must both agree), and the leader then appends a `leaveJoint`
/// entry on its own. A change that only adds learners applies directly, since
/// learners never count toward a quorum.
public struct ConfigChange: Sendable, Equatable, CustomStringConvertible {
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        case addVoter(NodeID)
        case removeVoter(NodeID)
        case addLearner(NodeID)
        /// A learner becomes a voter. Equivalent to `addVoter` of a learner.
        case promoteLearner(NodeID)

        public var description: String {
            switch self {
            case .addVoter(let id): "v+\(id)"
            case .removeVoter(let id): "v-\(id)"
            case .addLearner(let id): "l+\(id)"
            case .promoteLearner(let id): "l->v\(id)"
            }
        }
    }

    public enum Kind: Sendable, Equatable {
        /// The initial configuration, written identically by every founding member at index 1.
        case bootstrap(Membership)
        /// Apply `changes`; enters joint consensus when the voter set changes.
        case change
        /// Leave joint consensus: drop the outgoing voters.
        case leaveJoint
    }

    public var kind: Kind
    public var changes: [Step]

    public init(kind: Kind, changes: [Step] = []) {
        self.kind = kind
        self.changes = changes
    }

    public static func bootstrap(_ membership: Membership) -> ConfigChange {
        ConfigChange(kind: .bootstrap(membership))
    }

    public static let leaveJoint = ConfigChange(kind: .leaveJoint)

    /// The membership after this change applies to `current`, or why it cannot.
    public func applied(to current: Membership) -> Result<Membership, ConfigChangeError> {
        switch kind {
        case .bootstrap(let membership):
            return .success(membership)
        case .leaveJoint:
            guard current.isJoint else { return .failure(.notJoint) }
            var next = current
            next.outgoingVoters = []
            return .success(next)
        case .change:
            if current.isJoint { return .failure(.alreadyJoint) }
            var next = current
            for step in changes {
                switch step {
                case .addVoter(let id), .promoteLearner(let id):
                    if next.voters.contains(id) { return .failure(.alreadyVoter(id)) }
                    next.learners.remove(id)
                    next.voters.insert(id)
                case .removeVoter(let id):
                    guard next.voters.contains(id) || next.learners.contains(id) else {
                        return .failure(.notMember(id))
                    }
                    next.voters.remove(id)
                    next.learners.remove(id)
                case .addLearner(let id):
                    if next.voters.contains(id) { return .failure(.alreadyVoter(id)) }
                    if next.learners.contains(id) { return .failure(.alreadyLearner(id)) }
                    next.learners.insert(id)
                }
            }
            if next.voters.isEmpty { return .failure(.noVotersLeft) }
            if next.voters != current.voters { next.outgoingVoters = current.voters }
            return .success(next)
        }
    }

    public var description: String {
        switch kind {
        case .bootstrap(let m): "bootstrap \(m)"
        case .leaveJoint: "leave-joint"
        case .change: changes.map(\.description).joined(separator: " ")
        }
    }
}

/// Why a membership change cannot be applied.
public enum ConfigChangeError: Error, Sendable, Equatable, CustomStringConvertible {
    case alreadyJoint
    case notJoint
    case alreadyVoter(NodeID)
    case alreadyLearner(NodeID)
    case notMember(NodeID)
    case noVotersLeft

    public var description: String {
        switch self {
        case .alreadyJoint: "a joint configuration is still being left; retry once it is committed"
        case .notJoint: "not in a joint configuration; nothing to leave"
        case .alreadyVoter(let id): "member \(id) is already a voter"
        case .alreadyLearner(let id): "member \(id) is already a learner"
        case .notMember(let id): "member \(id) is not in the configuration"
        case .noVotersLeft: "the change would leave no voters; keep at least one"
        }
    }
}
