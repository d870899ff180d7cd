/// What a member must remember across a crash to keep its promises: the term
/// it has seen, whom it voted for in that term, and how far it knows the log
/// to be committed. Losing `vote` would let a member vote twice in one term.
public struct HardState: Sendable, Equatable, CustomStringConvertible {
    public var term: Term
    public var vote: NodeID?
    public var commit: LogIndex

    public init(term: Term = .zero, vote: NodeID? = nil, commit: LogIndex = .zero) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public var description: String {
        "term=\(term) vote=\(vote.map(\.description) ?? "-") commit=\(commit)"
    }
}
