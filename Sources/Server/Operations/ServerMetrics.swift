import Foundation
import GRPCCore
import Prometheus
import Synchronization

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
    let mvcc: MVCCMetrics

    /// etcd's buckets for disk latencies: 1 ms to about 8 s, doubling.
    static let diskBuckets: [Duration] = (0..<14).map { .microseconds(1000 << $0) }
    /// etcd's buckets for peer round trips: 0.1 ms to about 0.8 s, doubling.
    static let peerBuckets: [Duration] = (0..<14).map { .microseconds(100 << $0) }

    /// A full metric name as etcd spells it (no namespace or unit to add).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    init() {
        mvcc = MVCCMetrics(registry: registry)
        // etcd's version gauges: always 1, the version in the label.
        registry.makeGauge(descriptor: Self.named("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version."),
                           labels: [("server_version", MaintenanceService.serverVersion)]).set(to: 1.0)
        registry.makeGauge(descriptor: Self.named("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version"),
                           labels: [("cluster_version", MaintenanceService.clusterMinorVersion)]).set(to: 1.0)
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

    /// The gRPC counters made so far, by their labels: looked up here on
    /// every RPC instead of through the registry, which builds the metric's
    /// name and sorts its labels on each call.
    private let rpcCounters = Mutex<[RPCCounterKey: Counter]>([:])

    private struct RPCCounterKey: Hashable {
        var handled: Bool
        var service: String
        var method: String
        var type: String
        var code: String
    }

    private func rpcCounter(_ key: RPCCounterKey, _ make: () -> Counter) -> Counter {
        if let counter = rpcCounters.withLock({ $0[key] }) { return counter }
        let counter = make()
        rpcCounters.withLock { $0[key] = counter }
        return counter
    }

    /// gRPC's standard counter (go-grpc-prometheus names), by method and code.
    func handled(service: String, method: String, type: String, code: String) {
        rpcCounter(RPCCounterKey(handled: true, service: service, method: method, type: type, code: code)) {
            // Labels in name order, as Go's client writes them.
            registry.makeCounter(descriptor: Self.named("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure."), labels: [
                ("grpc_code", code), ("grpc_method", method), ("grpc_service", service), ("grpc_type", type),
            ])
        }.increment()
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
            },
            refused: { [registry] reason in
                registry.makeCounter(
                    descriptor: Self.named("ballot_peer_connections_refused_total", "Peer connections refused, by why (Ballot)."),
                    labels: [("reason", reason.label)]).increment()
            })
    }

    func started(service: String, method: String, type: String) {
        rpcCounter(RPCCounterKey(handled: false, service: service, method: method, type: type, code: "")) {
            registry.makeCounter(descriptor: Self.named("grpc_server_started_total", "Total number of RPCs started on the server."), labels: [
                ("grpc_method", method), ("grpc_service", service), ("grpc_type", type),
            ])
        }.increment()
    }
}

/// Counts every RPC the client server handles, with its final status.
struct MetricsInterceptor: ServerInterceptor {
    let metrics: ServerMetrics

    /// go-grpc-prometheus's `grpc_type` for etcd's streaming methods; the rest are unary.
    static let streamingMethods: [String: String] = [
        "Watch": "bidi_stream", "LeaseKeepAlive": "bidi_stream", "Snapshot": "server_stream", "Observe": "server_stream",
    ]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let service = context.descriptor.service.fullyQualifiedService
        let method = context.descriptor.method
        let type = Self.streamingMethods[method] ?? "unary"
        let metrics = self.metrics
        metrics.started(service: service, method: method, type: type)
        return try await callObservingEnd(next, request, context) { error, producing in
            // A client that left mid-stream (etcdctl watch exits, a reset
            // stream) is Canceled, as grpc-go reports it.
            let code = producing && context.cancellation.isCancelled ? "Canceled" : error.map(Self.grpcCodeName) ?? "OK"
            metrics.handled(service: service, method: method, type: type, code: code)
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

extension ServerMetrics {
    /// The registry's text with each sample's value as Go's Prometheus
    /// client writes it (`strconv.FormatFloat(v, 'g', -1, 64)`: `1`, not
    /// `1.0`; `1e+06`), so scrapes and tools that read etcd's text exactly
    /// read Ballot's the same.
    func exposition() -> [UInt8] {
        var out: [UInt8] = []
        let text = registry.emitToBuffer()
        out.reserveCapacity(text.count)
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.first != UInt8(ascii: "#"), let space = line.lastIndex(of: UInt8(ascii: " ")),
               let value = Double(String(decoding: line[line.index(after: space)...], as: UTF8.self)) {
                out += line[...space]
                out += Array(Self.goFloat(value).utf8)
            } else {
                out += line
            }
            out.append(UInt8(ascii: "\n"))
        }
        if out.last == UInt8(ascii: "\n"), text.last != UInt8(ascii: "\n") { out.removeLast() }
        return out
    }

    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that
    /// read back as `v`, in exponent form (`1e+06`, `2.5e-07`) when the
    /// decimal exponent is below -4 or at least 6, else plain (`123456`).
    static func goFloat(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        // Swift's description holds the shortest round-trip digits too.
        var text = "\(value.magnitude)"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(parts[0]), fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = whole + fraction
        var point = whole.count + exponent  // digits before the decimal point
        while digits.first == "0" && digits.count > 1 {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" && digits.count > 1 { digits.removeLast() }
        let sign = value < 0 ? "-" : ""
        let decimalExponent = point - 1
        if decimalExponent < -4 || decimalExponent >= goShortestExponentLimit {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let magnitude = abs(decimalExponent)
            return sign + mantissa + "e" + (decimalExponent < 0 ? "-" : "+") + (magnitude < 10 ? "0" : "") + "\(magnitude)"
        }
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) }
        return sign + digits.prefix(point) + "." + digits.dropFirst(point)
    }

    /// Go's 'g' with shortest precision writes an exponent from 10^6 on.
    static let goShortestExponentLimit = 6
}
