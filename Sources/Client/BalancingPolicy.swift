/// How a call picks the member it goes to, among those not ejected.
public enum BalancingPolicy: Sendable, Equatable {
    /// Each in turn.
    case roundRobin
    /// Uniformly at random.
    case random
    /// At random, in proportion to a weight per endpoint (missing: 1; 0: never while another is healthy).
    case weightedRandom([Endpoint: Int])
    /// The member the cluster's leader is, when known and healthy (writes
    /// and linearizable reads then skip a forward); round robin otherwise.
    case leaderPreferred
    /// The endpoint with the fewest calls under way; ties at random.
    case leastOutstanding
}
