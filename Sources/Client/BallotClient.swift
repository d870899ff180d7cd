import EtcdAPI
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// An async client for Ballot and etcd's v3 API: one gRPC connection per
/// endpoint, a balancing policy over them with ejection of members that
/// cannot serve (`EndpointSelector`), and retries with backoff and jitter
/// for what is safe to repeat (`ClientRetryPolicy`). Use it inside
/// `BallotClient.with(_:_:)`, which runs its connections and closes them.
public final class BallotClient: Sendable {
    public let configuration: ClientConfiguration
    typealias Connection = GRPCClient<HTTP2ClientTransport.Posix>
    let connections: [Connection]
    private let selector: Synchronization.Mutex<EndpointSelector>
    /// The client's background work (sessions' keep-alives, watches):
    /// cancelled when the client shuts down, so none outlives it.
    private let background = Locked<(tasks: [UInt64: Task<Void, Never>], next: UInt64, shutDown: Bool)>(([:], 0, false))
    /// When `leaderPreferred` last asked which member leads.
    private let leaderAskedAt = Synchronization.Mutex<ContinuousClock.Instant?>(nil)

    /// The longest a connection to an unreachable member waits between
    /// attempts (grpc-swift's default is two minutes): a member back from
    /// a restart is found again within it.
    static let reconnectBackoffMax = Duration.seconds(2)

    init(_ configuration: ClientConfiguration) throws {
        self.configuration = configuration
        selector = Synchronization.Mutex(try EndpointSelector(endpoints: configuration.endpoints, policy: configuration.balancing, ejection: configuration.ejection))
        connections = try configuration.endpoints.map { endpoint in
            GRPCClient(transport: try HTTP2ClientTransport.Posix(
                target: .dns(host: endpoint.host, port: endpoint.port), transportSecurity: .plaintext,
                config: .defaults { $0.backoff.max = Self.reconnectBackoffMax }))
        }
    }

    /// Run `body` with a client whose connections live as long as it does.
    @discardableResult
    public static func with<Result: Sendable>(_ configuration: ClientConfiguration, _ body: @Sendable (BallotClient) async throws -> Result) async throws -> Result {
        let client = try BallotClient(configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for connection in client.connections { group.addTask { try await connection.runConnections() } }
            let result: Swift.Result<Result, any Error>
            do {
                result = .success(try await body(client))
            } catch {
                result = .failure(error)
            }
            let running = client.background.withLock { state in
                state.shutDown = true
                return Array(state.tasks.values)
            }
            for task in running { task.cancel() }
            for connection in client.connections { connection.beginGracefulShutdown() }
            group.cancelAll()
            while let _ = try? await group.next() {}
            return try result.get()
        }
    }

    /// Start `work` as background work of this client: cancelled when the
    /// client shuts down (at once if it has).
    @discardableResult
    func background(_ work: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        let id = background.withLock { state in
            state.next += 1
            return state.next
        }
        // Started before it is registered, so it removes itself when done;
        // a task that ends first is registered and removed by nobody, hence
        // the check of `done` below.
        let done = Locked(false)
        let task = Task { [background] in
            await work()
            background.withLock { state in
                done.withLock { $0 = true }
                state.tasks[id] = nil
            }
        }
        let shutDown = background.withLock { state in
            if !done.withLock({ $0 }) { state.tasks[id] = task }
            return state.shutDown
        }
        if shutDown { task.cancel() }
        return task
    }

    /// A unary call of `safety`, on the endpoint the policy picks, tried
    /// again on another after a failure the retry policy allows. Each
    /// attempt has the request timeout, unless the call `waitsForTurn` (a
    /// lock, a campaign), which may wait as long as it takes.
    func call<Response: EtcdResponse>(
        _ safety: CallSafety, waitsForTurn: Bool = false,
        _ body: (Connection, CallOptions) async throws -> Response
    ) async throws -> Response {
        await refreshLeaderIfDue()
        var random = SystemRandomNumberGenerator()
        var tried: Set<Int> = []
        var options = CallOptions.defaults
        options.timeout = waitsForTurn ? nil : configuration.requestTimeout
        // Fail at once on a member whose connection is failing, and go elsewhere.
        options.waitForReady = false
        var attempt = 0
        while true {
            attempt += 1
            if attempt > 1 { try await Task.sleep(for: configuration.retry.delay(beforeRetry: attempt - 1, using: &random)) }
            let index = selector.withLock { $0.pick(now: .now, avoiding: tried, using: &random) }
            tried.insert(index)
            do {
                let response = try await body(connections[index], options)
                selector.withLock {
                    $0.finished(index, healthy: true, now: .now)
                    $0.learned(memberID: response.header.memberID, at: index)
                }
                return response
            } catch {
                let verdict = ClientRetryPolicy.verdict(on: error, safety: safety)
                selector.withLock {
                    $0.finished(index, healthy: !verdict.memberUnhealthy, now: .now)
                    if verdict.memberUnhealthy { $0.forgetLeader() }
                }
                if !verdict.retry || attempt >= configuration.retry.attempts || Task.isCancelled { throw error }
            }
        }
    }

    /// A streaming call's endpoint: picked as a unary call's, and told how
    /// the stream went when `body` returns or throws.
    func withEndpoint<Result: Sendable>(avoiding: Set<Int> = [], _ body: (Int, Connection) async throws -> Result) async throws -> Result {
        var random = SystemRandomNumberGenerator()
        let index = selector.withLock { $0.pick(now: .now, avoiding: avoiding, using: &random) }
        do {
            let result = try await body(index, connections[index])
            selector.withLock { $0.finished(index, healthy: true, now: .now) }
            return result
        } catch {
            let verdict = ClientRetryPolicy.verdict(on: error, safety: .read)
            selector.withLock { $0.finished(index, healthy: !verdict.memberUnhealthy, now: .now) }
            throw error
        }
    }

    /// A stream's options: no deadline (it lasts as long as it is used),
    /// failing at once on a member whose connection is failing.
    var streamOptions: CallOptions {
        var options = CallOptions.defaults
        options.waitForReady = false
        return options
    }

    /// Which endpoints are ejected now (for `endpoint status` and tests).
    public func ejectedEndpoints() -> [Endpoint] {
        selector.withLock { selector in selector.endpoints.indices.filter { selector.isEjected($0, now: .now) }.map { selector.endpoints[$0] } }
    }

    /// Under `leaderPreferred`: ask a member which one leads, at most once
    /// per refresh interval (and at once after the leader failed a call).
    private func refreshLeaderIfDue() async {
        guard configuration.balancing == .leaderPreferred else { return }
        let now = ContinuousClock.now
        let due: Bool = leaderAskedAt.withLock { asked in
            let known = selector.withLock { $0.leader != nil }
            guard !known || asked.map({ now - $0 >= configuration.leaderRefreshInterval }) ?? true else { return false }
            asked = now
            return true
        }
        guard due else { return }
        var options = CallOptions.defaults
        options.timeout = configuration.requestTimeout
        for index in connections.indices where !selector.withLock({ $0.isEjected(index, now: now) }) {
            let maintenance = Etcdserverpb_Maintenance.Client(wrapping: connections[index])
            if let status = try? await maintenance.status(Etcdserverpb_StatusRequest(), options: options) {
                selector.withLock { $0.learned(memberID: status.header.memberID, at: index, leader: status.leader) }
                if status.leader == status.header.memberID { break }
            }
        }
    }
}
