import Foundation
import Logging
import Engines
import Raft

extension ServerConfig {
    /// A member's configuration from etcd's command line, as etcd reads it.
    /// Host names (`localhost`) work in every URL; the URL flags take lists.
    public init(etcd flags: EtcdCommandLine) throws(ConfigError) {
        let name = flags.string("name")
        let listenClient = try Self.urls(flags, "listen-client-urls")
        let listenPeer = try Self.urls(flags, "listen-peer-urls")
        let advertisedPeers = try Self.urls(flags, "initial-advertise-peer-urls")
        // etcd's default names `default` at localhost:2380; a member whose
        // name was changed but whose cluster was not lists itself alone.
        let clusterText = flags.given.contains("initial-cluster") || name == "default"
            ? flags.string("initial-cluster")
            : advertisedPeers.map { "\(name)=\($0.url)" }.joined(separator: ",")
        var cluster: [(name: String, peer: HostPort)] = []
        for item in clusterText.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw .invalid("--initial-cluster: '\(item)' is not name=http://host:port") }
            let memberName = parts[0].trimmingCharacters(in: .whitespaces)
            let url = try HostPort(url: parts[1].trimmingCharacters(in: .whitespaces))
            // A member listed with several peer URLs is one member: its first URL names it.
            if !cluster.contains(where: { $0.name == memberName }) { cluster.append((memberName, url)) }
        }
        guard let advertised = advertisedPeers.first, cluster.first(where: { $0.name == name })?.peer == advertised else {
            throw .invalid(
                "--initial-cluster has \(cluster.first(where: { $0.name == name }).map { "\(name)=\($0.peer.url)" } ?? "no member named \(name)") but missing from --initial-advertise-peer-urls=\(advertisedPeers.map(\.url).joined(separator: ","))")
        }
        // etcd's rule: a client URL bound explicitly says nothing of how
        // clients reach it (0.0.0.0, a proxy), so it must be advertised too.
        if flags.given.contains("listen-client-urls") && !flags.given.contains("advertise-client-urls") {
            throw .invalid("--advertise-client-urls is required when --listen-client-urls is set explicitly")
        }
        guard let state = ClusterState(rawValue: flags.string("initial-cluster-state")) else {
            throw .invalid("invalid value \"\(flags.string("initial-cluster-state"))\" for flag -initial-cluster-state: valid values are \"new\" or \"existing\"")
        }
        let dataDirectory = flags.given.contains("data-dir") ? flags.string("data-dir") : "\(name).ballot"
        self.init(
            name: name, dataDirectory: dataDirectory, listenClient: listenClient,
            advertiseClientURLs: flags.list("advertise-client-urls"), listenPeer: listenPeer, initialCluster: cluster,
            initialClusterState: state, clusterToken: flags.string("initial-cluster-token"))
        self.listenMetrics = try Self.urls(flags, "listen-metrics-urls")
        self.heartbeatMilliseconds = try flags.integer("heartbeat-interval")
        self.electionMilliseconds = try flags.integer("election-timeout")
        let quota = try flags.integer("quota-backend-bytes")
        guard quota >= 0 else { throw .invalid("--quota-backend-bytes must not be negative") }
        self.quotaBackendBytes = quota == 0 ? Self.quotaBackendBytesDefault : quota
        self.maxRequestBytes = try flags.integer("max-request-bytes")
        self.maxTxnOperations = try flags.integer("max-txn-ops")
        self.maxConcurrentStreams = try flags.integer("max-concurrent-streams")
        let cors = flags.list("cors")
        self.corsOrigins = cors.isEmpty ? ["*"] : cors
        self.compactionBatchKeys = try flags.integer("experimental-compaction-batch-limit")
        // etcd replaces a cost out of bcrypt's range, and a TTL of 0 or less, by the default.
        let cost = try flags.integer("bcrypt-cost")
        self.bcryptCost = Self.bcryptCostRange.contains(cost) ? cost : Self.bcryptCostDefault
        let ttl = try flags.integer("auth-token-ttl")
        self.authTokenTTLSeconds = ttl <= 0 ? Self.authTokenTTLSecondsDefault : min(ttl, Self.authTokenTTLSecondsRange.upperBound)
        self.authToken = flags.string("auth-token")
        self.peerSecretFile = flags.string("peer-secret-file")
        self.allowsPlaintextNonLoopback = flags.bool("allow-plaintext-non-loopback")
        self.leaseReads = flags.bool("lease-reads")
        let engineName = flags.string("engine")
        guard let engine = EngineKind(rawValue: engineName) else {
            throw .invalid("--engine \(engineName): the engine is 'raft' or 'paxos'")
        }
        self.engine = engine
        let drift = try flags.integer("lease-read-clock-drift-percent")
        guard (0...RaftSettings.clockDriftBoundPercentMax).contains(drift) else {
            throw .invalid("--lease-read-clock-drift-percent \(drift): from 0 to \(RaftSettings.clockDriftBoundPercentMax)")
        }
        self.leaseReadClockDriftPercent = drift
        let tokenType = authToken.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard tokenType == "simple" || tokenType == "jwt" else {
            throw .invalid("--auth-token \(tokenType): the token type is 'simple' or 'jwt'")
        }
        let snapshotCount = try flags.integer("snapshot-count")
        guard snapshotCount >= 0 else { throw .invalid("--snapshot-count must not be negative") }
        self.snapshotCount = UInt64(snapshotCount)
        self.autoCompaction = try AutoCompaction(mode: flags.string("auto-compaction-mode"), retention: flags.string("auto-compaction-retention"))
        self.logLevel = flags.bool("debug") ? .debug : try Self.logLevel(flags.string("log-level"))
        let outputs = flags.list("log-outputs")
        guard outputs.allSatisfy({ ["default", "stderr", "stdout"].contains($0) }), outputs.count <= 1 else {
            throw .invalid("--log-outputs: Ballot writes to one of stderr (default) or stdout; redirect it to keep a file")
        }
        self.logToStandardOutput = outputs == ["stdout"]
        self.clientTLS = Self.tls(flags, prefix: "")
        self.peerTLS = Self.tls(flags, prefix: "peer-")
        // etcd applies one list to both sides.
        let suites = try CipherSuites.parse(flags.string("cipher-suites"))
        self.clientTLS.cipherSuites = suites
        self.peerTLS.cipherSuites = suites
    }

    /// `--cert-file --key-file --trusted-ca-file --client-cert-auth
    /// --auto-tls`, or with `prefix` "peer-" their peer twins.
    static func tls(_ flags: EtcdCommandLine, prefix: String) -> TLSSettings {
        var settings = TLSSettings()
        settings.certFile = flags.string(prefix + "cert-file")
        settings.keyFile = flags.string(prefix + "key-file")
        settings.trustedCAFile = flags.string(prefix + "trusted-ca-file")
        settings.clientCertAuth = flags.bool(prefix + "client-cert-auth")
        settings.autoTLS = flags.bool(prefix + "auto-tls")
        settings.crlFile = flags.string(prefix.isEmpty ? "client-crl-file" : prefix + "crl-file")
        if prefix == "peer-" {
            settings.allowedCN = flags.string("peer-cert-allowed-cn")
            settings.allowedHostname = flags.string("peer-cert-allowed-hostname")
        }
        return settings
    }

    /// etcd's log levels (and swift-log's own names).
    static func logLevel(_ text: String) throws(ConfigError) -> Logger.Level {
        switch text {
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        case "panic", "fatal", "critical": .critical
        case "trace": .trace
        case "notice": .notice
        default: throw .invalid("--log-level: unknown level \"\(text)\" (debug, info, warn, error, panic or fatal)")
        }
    }

    static func urls(_ flags: EtcdCommandLine, _ name: String) throws(ConfigError) -> [HostPort] {
        var urls: [HostPort] = []
        for text in flags.list(name) { urls.append(try HostPort(url: text)) }
        if urls.isEmpty && name != "listen-metrics-urls" { throw .invalid("--\(name) must name at least one URL") }
        return urls
    }
}
