/// Everything a `BallotClient` is told, each tunable with a named default
/// and a limit.
public struct ClientConfiguration: Sendable {
    public var endpoints: [Endpoint]
    public var balancing: BalancingPolicy
    public var retry: ClientRetryPolicy
    public var ejection: EndpointSelector.Ejection
    /// How long one attempt of a unary call may take (a lock or a
    /// campaign waits without it: they wait for their turn).
    public var requestTimeout: Duration
    public static let requestTimeoutDefault = Duration.seconds(10)
    public static let requestTimeoutLimit = Duration.seconds(600)
    /// How often `leaderPreferred` asks which member leads.
    public var leaderRefreshInterval: Duration
    public static let leaderRefreshIntervalDefault = Duration.seconds(5)

    public init(endpoints: [Endpoint], balancing: BalancingPolicy = .roundRobin, retry: ClientRetryPolicy = .standard,
                ejection: EndpointSelector.Ejection = .standard, requestTimeout: Duration = requestTimeoutDefault,
                leaderRefreshInterval: Duration = leaderRefreshIntervalDefault) {
        precondition(requestTimeout > .zero && requestTimeout <= Self.requestTimeoutLimit, "a request timeout is positive and at most \(Self.requestTimeoutLimit)")
        precondition(leaderRefreshInterval > .zero, "the leader is refreshed at a positive interval")
        self.endpoints = endpoints
        self.balancing = balancing
        self.retry = retry
        self.ejection = ejection
        self.requestTimeout = requestTimeout
        self.leaderRefreshInterval = leaderRefreshInterval
    }

    /// `host:port,host:port`, as etcdctl's `--endpoints`.
    public init(endpoints list: String, balancing: BalancingPolicy = .roundRobin) throws(ClientError) {
        var parsed: [Endpoint] = []
        for item in list.split(separator: ",") { parsed.append(try Endpoint(parsing: String(item))) }
        guard !parsed.isEmpty else { throw .noEndpoints }
        self.init(endpoints: parsed, balancing: balancing)
    }
}
