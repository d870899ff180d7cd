import Consensus

/// A broken Raft safety property (Raft §5.2–5.4, Figure 3), a broken
/// Paxos one ("Paxos Made Simple" §2.1), or a broken promise of the state
/// machine layer above them.
public struct SafetyViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Property: String, Sendable, Equatable {
        case electionSafety = "Election Safety"
        case leaderAppendOnly = "Leader Append-Only"
        case logMatching = "Log Matching"
        case leaderCompleteness = "Leader Completeness"
        case stateMachineSafety = "State Machine Safety"
        case chosenOnce = "One Value Chosen Per Slot"
        case onlyProposedChosen = "Only Proposed Values Chosen"
        case linearizability = "Linearizability"
        case liveness = "Liveness"
        case convergence = "Convergence"
    }

    public var property: Property
    public var detail: String

    public init(_ property: Property, _ detail: String) {
        self.property = property
        self.detail = detail
    }

    public var description: String { "\(property.rawValue) violated: \(detail)" }
}
