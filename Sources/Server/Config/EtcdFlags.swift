/// Every flag of etcd 3.4 (`etcd --help`, in its order), with what Ballot
/// does with each.
extension EtcdFlag {
    static let noCertificateRules = "client allowed hostnames are not implemented yet; leave this flag unset (the certificate's chain is still verified against --trusted-ca-file)"
    static let noV2 = "Ballot serves etcd's v3 API only (etcd 3.4 has v2 off by default too); move v2 clients to v3"
    static let noProxy = "Ballot has no v2 proxy mode; point clients at the members' client URLs"
    static let noDiscovery = "discovery is not supported; list the members with --initial-cluster"

    public static let all: [EtcdFlag] = [
        // Member
        EtcdFlag("name", .string, "default", .used, "Human-readable name for this member."),
        EtcdFlag("data-dir", .string, "${name}.ballot", .used, "Path to the data directory (Ballot's default differs from etcd's ${name}.etcd, so it never opens an etcd data directory by accident)."),
        EtcdFlag("wal-dir", .string, "", .refused("Ballot keeps its write-ahead log in --data-dir/wal; leave --wal-dir unset"), "Path to the dedicated wal directory."),
        EtcdFlag("snapshot-count", .integer, "100000", .used, "Number of committed transactions to trigger a snapshot to disk."),
        EtcdFlag("heartbeat-interval", .integer, "100", .used, "Time (in milliseconds) of a heartbeat interval."),
        EtcdFlag("election-timeout", .integer, "1000", .used, "Time (in milliseconds) for an election to timeout."),
        EtcdFlag("initial-election-tick-advance", .bool, "true", .noEffect("Ballot's members campaign after one randomized election timeout"), "Whether to fast-forward initial election ticks on boot for faster election."),
        EtcdFlag("listen-peer-urls", .string, "http://localhost:2380", .used, "List of URLs to listen on for peer traffic."),
        EtcdFlag("listen-client-urls", .string, "http://localhost:2379", .used, "List of URLs to listen on for client traffic."),
        EtcdFlag("max-snapshots", .integer, "5", .noEffect("Ballot keeps the snapshots it needs and removes older ones itself"), "Maximum number of snapshot files to retain (0 is unlimited)."),
        EtcdFlag("max-wals", .integer, "5", .noEffect("Ballot removes write-ahead log segments once a compaction covers them"), "Maximum number of wal files to retain (0 is unlimited)."),
        EtcdFlag("quota-backend-bytes", .integer, "0", .used, "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
        EtcdFlag("backend-batch-interval", .duration, "", .noEffect("Ballot commits applied entries within 5 ms, at once when a reader waits"), "BackendBatchInterval is the maximum time before commit the backend transaction."),
        EtcdFlag("backend-batch-limit", .integer, "0", .noEffect("Ballot commits applied entries within 5 ms, at once when a reader waits"), "BackendBatchLimit is the maximum operations before commit the backend transaction."),
        EtcdFlag("max-txn-ops", .integer, "128", .used, "Maximum number of operations permitted in a transaction."),
        EtcdFlag("max-request-bytes", .integer, "1572864", .used, "Maximum client request size in bytes the server will accept."),
        EtcdFlag("max-concurrent-streams", .integer, "4294967295", .used, "Maximum concurrent streams that each client can open at a time."),
        EtcdFlag("grpc-keepalive-min-time", .duration, "5s", .noEffect("gRPC's keepalive defaults apply"), "Minimum duration interval that a client should wait before pinging server."),
        EtcdFlag("grpc-keepalive-interval", .duration, "2h", .noEffect("gRPC's keepalive defaults apply"), "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
        EtcdFlag("grpc-keepalive-timeout", .duration, "20s", .noEffect("gRPC's keepalive defaults apply"), "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
        // Clustering
        EtcdFlag("initial-advertise-peer-urls", .string, "http://localhost:2380", .used, "List of this member's peer URLs to advertise to the rest of the cluster."),
        EtcdFlag("initial-cluster", .string, "default=http://localhost:2380", .used, "Initial cluster configuration for bootstrapping."),
        EtcdFlag("initial-cluster-state", .string, "new", .used, "Initial cluster state ('new' or 'existing')."),
        EtcdFlag("initial-cluster-token", .string, "etcd-cluster", .used, "Initial cluster token for the etcd cluster during bootstrap."),
        EtcdFlag("advertise-client-urls", .string, "http://localhost:2379", .used, "List of this member's client URLs to advertise to the public."),
        EtcdFlag("discovery", .string, "", .refused(noDiscovery), "Discovery URL used to bootstrap the cluster."),
        EtcdFlag("discovery-fallback", .string, "proxy", .noEffect(noDiscovery), "Expected behavior ('exit' or 'proxy') when discovery services fails."),
        EtcdFlag("discovery-proxy", .string, "", .refused(noDiscovery), "HTTP proxy to use for traffic to discovery service."),
        EtcdFlag("discovery-srv", .string, "", .refused(noDiscovery), "DNS srv domain used to bootstrap the cluster."),
        EtcdFlag("discovery-srv-name", .string, "", .refused(noDiscovery), "Suffix to the dns srv name queried when bootstrapping."),
        EtcdFlag("strict-reconfig-check", .bool, "true", .noEffect("Ballot always refuses a reconfiguration that would lose quorum"), "Reject reconfiguration requests that would cause quorum loss."),
        EtcdFlag("pre-vote", .bool, "false", .noEffect("Ballot's Raft always runs the pre-vote phase"), "Enable to run an additional Raft election phase."),
        EtcdFlag("auto-compaction-retention", .string, "0", .used, "Auto compaction retention length. 0 means disable auto compaction."),
        EtcdFlag("auto-compaction-mode", .string, "periodic", .used, "Interpret 'auto-compaction-retention' one of: periodic|revision."),
        EtcdFlag("enable-v2", .bool, "false", .noEffect(noV2), "Accept etcd V2 client requests."),
        // Security
        EtcdFlag("cert-file", .string, "", .used, "Path to the client server TLS cert file."),
        EtcdFlag("key-file", .string, "", .used, "Path to the client server TLS key file."),
        EtcdFlag("client-cert-auth", .bool, "false", .used, "Enable client cert authentication."),
        EtcdFlag("client-crl-file", .string, "", .used, "Path to the client certificate revocation list file."),
        EtcdFlag("client-cert-allowed-hostname", .string, "", .refused(noCertificateRules), "Allowed TLS hostname for client cert authentication."),
        EtcdFlag("trusted-ca-file", .string, "", .used, "Path to the client server TLS trusted CA cert file."),
        EtcdFlag("auto-tls", .bool, "false", .used, "Client TLS using generated certificates."),
        EtcdFlag("peer-cert-file", .string, "", .used, "Path to the peer server TLS cert file."),
        EtcdFlag("peer-key-file", .string, "", .used, "Path to the peer server TLS key file."),
        EtcdFlag("peer-client-cert-auth", .bool, "false", .used, "Enable peer client cert authentication."),
        EtcdFlag("peer-trusted-ca-file", .string, "", .used, "Path to the peer server TLS trusted CA file."),
        EtcdFlag("peer-cert-allowed-cn", .string, "", .used, "Required CN for client certs connecting to the peer endpoint."),
        EtcdFlag("peer-cert-allowed-hostname", .string, "", .used, "Allowed TLS hostname for inter peer authentication."),
        EtcdFlag("peer-auto-tls", .bool, "false", .used, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
        EtcdFlag("peer-crl-file", .string, "", .used, "Path to the peer certificate revocation list file."),
        EtcdFlag("cipher-suites", .string, "", .used, "Comma-separated list of supported TLS cipher suites between client/server and peers."),
        EtcdFlag("cors", .string, "*", .used, "Comma-separated whitelist of origins for CORS (empty or * means allow all)."),
        EtcdFlag("host-whitelist", .string, "*", .noEffect("HTTP requests are not filtered by host"), "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all)."),
        // Auth
        EtcdFlag("auth-token", .string, "simple", .used, "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
        EtcdFlag("bcrypt-cost", .integer, "10", .used, "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords."),
        EtcdFlag("auth-token-ttl", .integer, "300", .used, "Time (in seconds) of the auth-token-ttl."),
        // Profiling and monitoring
        EtcdFlag("enable-pprof", .bool, "false", .noEffect("Go's pprof does not exist in a Swift server; use perf"), "Enable runtime profiling data via HTTP server."),
        EtcdFlag("metrics", .string, "basic", .noEffect("Ballot always exports the same metrics"), "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics."),
        EtcdFlag("listen-metrics-urls", .string, "", .used, "List of URLs to listen on for the metrics and health endpoints."),
        // Logging
        EtcdFlag("logger", .string, "capnslog", .noEffect("Ballot always logs structured lines"), "Specify 'zap' for structured logging or 'capnslog'."),
        EtcdFlag("log-outputs", .string, "default", .used, "Specify 'stdout' or 'stderr', or a comma-separated list of output targets."),
        EtcdFlag("log-level", .string, "info", .used, "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
        // v2 proxy
        EtcdFlag("proxy", .string, "off", .refused(noProxy), "Proxy mode setting ('off', 'readonly' or 'on')."),
        EtcdFlag("proxy-failure-wait", .integer, "5000", .noEffect(noProxy), "Time (in milliseconds) an endpoint will be held in a failed state."),
        EtcdFlag("proxy-refresh-interval", .integer, "30000", .noEffect(noProxy), "Time (in milliseconds) of the endpoints refresh interval."),
        EtcdFlag("proxy-dial-timeout", .integer, "1000", .noEffect(noProxy), "Time (in milliseconds) for a dial to timeout."),
        EtcdFlag("proxy-write-timeout", .integer, "5000", .noEffect(noProxy), "Time (in milliseconds) for a write to timeout."),
        EtcdFlag("proxy-read-timeout", .integer, "0", .noEffect(noProxy), "Time (in milliseconds) for a read to timeout."),
        // Experimental
        EtcdFlag("experimental-initial-corrupt-check", .bool, "false", .noEffect("Ballot verifies every record's checksum when it opens its store"), "Enable to check data corruption before serving any client/peer traffic."),
        EtcdFlag("experimental-corrupt-check-time", .duration, "0s", .noEffect("compare members with `etcdctl endpoint hashkv`"), "Duration of time between cluster corruption check passes."),
        EtcdFlag("experimental-enable-v2v3", .string, "", .refused(noV2), "Serve v2 requests through the v3 backend under a given prefix."),
        EtcdFlag("experimental-backend-bbolt-freelist-type", .string, "array", .noEffect("Ballot's backend is LMDB, not bbolt"), "The type of freelist that boltdb backend uses (array and map are supported types)."),
        EtcdFlag("experimental-enable-lease-checkpoint", .bool, "false", .noEffect("leases are decided by the leader's clock"), "Enable the primary lessor to persist lease remainingTTL."),
        EtcdFlag("experimental-compaction-batch-limit", .integer, "1000", .used, "Sets the maximum revisions deleted in each compaction batch."),
        EtcdFlag("experimental-peer-skip-client-san-verification", .bool, "false", .noEffect("Ballot checks a peer client certificate's chain, never its SAN against the dialler's address: the check this flag skips is never made"), "Skip verification of SAN field in client certificate for peer connections."),
        EtcdFlag("experimental-watch-progress-notify-interval", .duration, "10m", .noEffect("watch progress notifications are sent on request"), "Duration of periodical watch progress notification."),
        EtcdFlag("experimental-warning-apply-duration", .duration, "100ms", .noEffect("Ballot does not time individual applies"), "Warning is generated if requests take more than this duration."),
        // Unsafe
        EtcdFlag("force-new-cluster", .bool, "false", .refused("not supported: restore a new cluster from a snapshot instead"), "Force to create a new one-member cluster."),
        // To be deprecated
        EtcdFlag("debug", .bool, "false", .used, "Enable debug-level logging for etcd. Use '--log-level=debug' instead."),
        EtcdFlag("log-package-levels", .string, "", .noEffect("use --log-level"), "Specify a particular log level for each etcd package."),
        EtcdFlag("config-file", .string, "", .used, "Path to the server configuration file."),
        // Ballot's own
        EtcdFlag("engine", .string, "raft", .used, "Ballot: the consensus engine, raft or multi-Paxos (paxos); every member of a cluster runs the same one, recorded in its data directory and checked when peers connect."),
        EtcdFlag("peer-secret-file", .string, "", .used, "Ballot: path to the cluster's peer secret (16 to 4096 bytes, the same file on every member); every peer connection proves both ways that it holds it."),
        EtcdFlag("lease-reads", .bool, "false", .used, "Ballot: let reads that ask for it (metadata ballot-consistency: lease) be answered from the leader's lease, with no round of messages; safe only while no member's clock runs faster than --lease-read-clock-drift-percent against the leader's."),
        EtcdFlag("lease-read-clock-drift-percent", .integer, "10", .used, "Ballot: the fastest any member's clock may run against the leader's, in percent (0 to 50); the lease is shortened by as much."),
        EtcdFlag("allow-plaintext-non-loopback", .bool, "false", .used, "Ballot: allow http peer URLs on addresses other than loopback, refused without it (http client URLs there are logged as a warning either way)."),
    ]
}
