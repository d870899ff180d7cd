/// Which endpoint a call goes to: the balancing policy over the endpoints
/// not ejected, with ejection and re-admission by health. A value with no
/// clock and no randomness of its own (both are passed in), so its choices
/// are tested exactly; the client holds it under a lock.
///
/// Ejection: a failure that says the member cannot serve (its connection
/// failed, it knows no leader) ejects it for `ejection.base`, doubling with
/// each consecutive failure up to `ejection.max`. When the time is up it is
/// picked again as any other; one success clears its record. With every
/// endpoint ejected, the one whose ejection ends first is used, so a call
/// never waits on the balancer.
public struct EndpointSelector: Sendable {
    public struct Ejection: Sendable, Equatable {
        public var base: Duration
        public var max: Duration
        public static let defaultBase = Duration.milliseconds(500)
        public static let defaultMax = Duration.seconds(30)
        public static let standard = Ejection(base: defaultBase, max: defaultMax)

        public init(base: Duration, max: Duration) {
            precondition(base > .zero && max >= base, "an ejection lasts a positive time, its max at least its base")
            self.base = base
            self.max = max
        }
    }

    struct Health: Sendable {
        var consecutiveFailures = 0
        var ejectedUntil: ContinuousClock.Instant?
    }

    public let endpoints: [Endpoint]
    public let policy: BalancingPolicy
    public let ejection: Ejection
    private var health: [Health]
    private var outstanding: [Int]
    private var cursor = 0
    /// The member ID each endpoint answered with (response headers).
    private var memberIDs: [UInt64?]
    /// The leader's member ID, as a member last reported it.
    public private(set) var leader: UInt64?

    public init(endpoints: [Endpoint], policy: BalancingPolicy, ejection: Ejection = .standard) throws(ClientError) {
        guard !endpoints.isEmpty else { throw .noEndpoints }
        self.endpoints = endpoints
        self.policy = policy
        self.ejection = ejection
        health = Array(repeating: Health(), count: endpoints.count)
        outstanding = Array(repeating: 0, count: endpoints.count)
        memberIDs = Array(repeating: nil, count: endpoints.count)
    }

    /// The endpoint for the next call (an index into `endpoints`), which
    /// counts as outstanding until `finished(_:)`. `avoiding`: endpoints a
    /// retry would rather not go back to, used only if nothing else is healthy.
    public mutating func pick(now: ContinuousClock.Instant, avoiding: Set<Int> = [], using random: inout some RandomNumberGenerator) -> Int {
        var candidates = endpoints.indices.filter { isHealthy($0, now: now) && !avoiding.contains($0) }
        if candidates.isEmpty { candidates = endpoints.indices.filter { isHealthy($0, now: now) } }
        let chosen: Int
        if candidates.isEmpty {
            // All ejected: the one back soonest.
            chosen = endpoints.indices.min { (health[$0].ejectedUntil ?? now) < (health[$1].ejectedUntil ?? now) }!
        } else {
            chosen = choose(among: candidates, using: &random)
        }
        outstanding[chosen] += 1
        return chosen
    }

    private func isHealthy(_ i: Int, now: ContinuousClock.Instant) -> Bool {
        guard let until = health[i].ejectedUntil else { return true }
        return until <= now
    }

    private mutating func choose(among candidates: [Int], using random: inout some RandomNumberGenerator) -> Int {
        switch policy {
        case .roundRobin:
            return nextInTurn(candidates)
        case .random:
            return candidates.randomElement(using: &random)!
        case .weightedRandom(let weights):
            let weighted = candidates.map { (index: $0, weight: Swift.max(0, weights[endpoints[$0]] ?? 1)) }
            let total = weighted.reduce(0) { $0 + $1.weight }
            guard total > 0 else { return candidates.randomElement(using: &random)! }
            var draw = Int.random(in: 0..<total, using: &random)
            for entry in weighted {
                if draw < entry.weight { return entry.index }
                draw -= entry.weight
            }
            preconditionFailure("a draw below the total falls on some weight")
        case .leaderPreferred:
            if let leader, let index = candidates.first(where: { memberIDs[$0] == leader }) { return index }
            return nextInTurn(candidates)
        case .leastOutstanding:
            let least = candidates.map { outstanding[$0] }.min()!
            return candidates.filter { outstanding[$0] == least }.randomElement(using: &random)!
        }
    }

    private mutating func nextInTurn(_ candidates: [Int]) -> Int {
        // The first candidate at or after the cursor, so turns stay fair as endpoints come and go.
        let chosen = candidates.first { $0 >= cursor } ?? candidates[0]
        cursor = (chosen + 1) % endpoints.count
        return chosen
    }

    /// A call to `index` ended; `healthy` says whether the member served it
    /// (an answer, even a refusal of the request) or could not (ejected).
    public mutating func finished(_ index: Int, healthy: Bool, now: ContinuousClock.Instant) {
        precondition(outstanding[index] > 0, "finished a call that was never picked")
        outstanding[index] -= 1
        if healthy {
            health[index] = Health()
        } else {
            health[index].consecutiveFailures += 1
            let doublings = Swift.min(health[index].consecutiveFailures - 1, 16)
            let period = Swift.min(ejection.max, ejection.base * (1 << doublings))
            health[index].ejectedUntil = now + period
        }
    }

    /// What a response header said: the member that answered, and (from
    /// a status call) which member leads.
    public mutating func learned(memberID: UInt64, at index: Int, leader: UInt64? = nil) {
        memberIDs[index] = memberID
        if let leader, leader != 0 { self.leader = leader }
    }

    /// Forget the leader (it failed, or another was elected).
    public mutating func forgetLeader() {
        leader = nil
    }

    /// Whether `index` is ejected at `now`.
    public func isEjected(_ index: Int, now: ContinuousClock.Instant) -> Bool {
        !isHealthy(index, now: now)
    }

    /// Calls under way at `index`.
    public func outstandingCalls(_ index: Int) -> Int { outstanding[index] }
}
