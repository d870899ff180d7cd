import Foundation
import GRPCCore
import Prometheus

/// The member's Prometheus metrics, named as etcd names them where the
/// concept matches, so etcd's dashboards and alerts work unchanged. One
/// registry per server instance (no global state): the node records what
/// happens; gauges that mirror state are refreshed when scraped.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    let hasLeader: Gauge
    let isLeader: Gauge
    let leaderChanges: Counter
    let proposalsCommitted: Gauge
    let proposalsApplied: Gauge
    let proposalsPending: Gauge
    let proposalsFailed: Counter
    let walFsync: DurationHistogram
    let backendCommit: DurationHistogram
    let dbTotalSize: Gauge
    let dbInUseSize: Gauge
    let raftTerm: Gauge
    let peerRoundTrip: DurationHistogram

    /// etcd's buckets for disk latencies: 1 ms to about 8 s, doubling.
    static let diskBuckets: [Duration] = (0..<14).map { .microseconds(1000 << $0) }
    /// etcd's buckets for peer round trips: 0.1 ms to about 0.8 s, doubling.
    static let peerBuckets: [Duration] = (0..<14).map { .microseconds(100 << $0) }

    /// A full metric name as etcd spells it (no namespace or unit to add).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    init() {
        hasLeader = registry.makeGauge(descriptor: Self.named("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not."))
        isLeader = registry.makeGauge(descriptor: Self.named("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise."))
        leaderChanges = registry.makeCounter(descriptor: Self.named("etcd_server_leader_changes_seen_total", "The number of leader changes seen."))
        proposalsCommitted = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_committed_total", "The total number of consensus proposals committed."))
        proposalsApplied = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_applied_total", "The total number of consensus proposals applied."))
        proposalsPending = registry.makeGauge(descriptor: Self.named("etcd_server_proposals_pending", "The current number of pending proposals to commit."))
        proposalsFailed = registry.makeCounter(descriptor: Self.named("etcd_server_proposals_failed_total", "The total number of failed proposals seen."))
        walFsync = registry.makeDurationHistogram(descriptor: Self.named("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL."), buckets: Self.diskBuckets)
        backendCommit = registry.makeDurationHistogram(descriptor: Self.named("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend."), buckets: Self.diskBuckets)
        dbTotalSize = registry.makeGauge(descriptor: Self.named("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes."))
        dbInUseSize = registry.makeGauge(descriptor: Self.named("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes."))
        peerRoundTrip = registry.makeDurationHistogram(
            descriptor: Self.named("etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers."),
            buckets: Self.peerBuckets)
        raftTerm = registry.makeGauge(descriptor: Self.named("etcd_server_term", "The current term of this member (Ballot)."))
    }

    /// gRPC's standard counter (go-grpc-prometheus names), by method and code.
    func handled(service: String, method: String, type: String, code: String) {
        registry.makeCounter(descriptor: Self.named("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure."), labels: [
            ("grpc_type", type), ("grpc_service", service), ("grpc_method", method), ("grpc_code", code),
        ]).increment()
    }

    /// The peer transport's reports: round trips, and bytes by peer with
    /// etcd's labels (`To`, `From`: the member ID in hex).
    var peerTraffic: PeerTraffic {
        PeerTraffic(
            roundTrip: { [peerRoundTrip] in peerRoundTrip.record($0) },
            sentTo: { [registry] peer in
                let counter = registry.makeCounter(
                    descriptor: Self.named("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers."),
                    labels: [("To", String(peer.rawValue, radix: 16))])
                return { counter.increment(by: Int64($0)) }
            },
            receivedFrom: { [registry] peer in
                let counter = registry.makeCounter(
                    descriptor: Self.named("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers."),
                    labels: [("From", String(peer.rawValue, radix: 16))])
                return { counter.increment(by: Int64($0)) }
            })
    }

    func started(service: String, method: String, type: String) {
        registry.makeCounter(descriptor: Self.named("grpc_server_started_total", "Total number of RPCs started on the server."), labels: [
            ("grpc_type", type), ("grpc_service", service), ("grpc_method", method),
        ]).increment()
    }
}

/// Counts every RPC the client server handles, with its final status.
struct MetricsInterceptor: ServerInterceptor {
    let metrics: ServerMetrics

    static let streamingMethods: Set<String> = ["Watch", "LeaseKeepAlive", "Snapshot"]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let service = context.descriptor.service.fullyQualifiedService
        let method = context.descriptor.method
        let type = Self.streamingMethods.contains(method) ? "bidi_stream" : "unary"
        let metrics = self.metrics
        metrics.started(service: service, method: method, type: type)
        do {
            var response = try await next(request, context)
            switch response.accepted {
            case .success(var contents):
                let producer = contents.producer
                contents.producer = { writer in
                    do {
                        let trailers = try await producer(writer)
                        metrics.handled(service: service, method: method, type: type, code: "OK")
                        return trailers
                    } catch {
                        metrics.handled(service: service, method: method, type: type, code: Self.grpcCodeName(error))
                        throw error
                    }
                }
                response.accepted = .success(contents)
            case .failure(let error):
                metrics.handled(service: service, method: method, type: type, code: Self.grpcCodeName(error))
            }
            return response
        } catch {
            metrics.handled(service: service, method: method, type: type, code: Self.grpcCodeName(error))
            throw error
        }
    }

    /// gRPC's canonical code names, as Go's grpc-prometheus labels them.
    static func grpcCodeName(_ error: any Error) -> String {
        guard let code = (error as? RPCError)?.code else { return "Unknown" }
        let names = [
            "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
            "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
            "Internal", "Unavailable", "DataLoss", "Unauthenticated",
        ]
        return names.indices.contains(code.rawValue) ? names[code.rawValue] : "Unknown"
    }
}
