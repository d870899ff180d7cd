import Consensus
import Crypto
import Logging
import Engines
import MultiPaxos
import Raft
import Storage

/// Everything one member needs to start, in etcd's vocabulary: the
/// `ballot` command fills it from etcd's own flag names.
public struct ServerConfig: Sendable {
    public var name: String
    public var dataDirectory: String
    /// Where clients connect: gRPC and the HTTP endpoints on each
    /// (host:port; host names resolve when bound).
    public var listenClient: [HostPort]
    public var advertiseClientURLs: [String]
    /// Where peers connect.
    public var listenPeer: [HostPort]
    /// An extra listener for `/metrics`, `/health` and `/readyz` only
    /// (etcd's --listen-metrics-urls); the client URLs serve them too.
    public var listenMetrics: [HostPort] = []
    /// Every founding member's name and advertised peer address.
    public var initialCluster: [(name: String, peer: HostPort)]
    public var initialClusterState: ClusterState
    public var clusterToken: String

    public static let heartbeatMillisecondsDefault = 100
    public static let heartbeatMillisecondsRange = 10...10_000
    /// One Raft tick; the leader heartbeats every tick.
    public var heartbeatMilliseconds = heartbeatMillisecondsDefault

    public static let electionMillisecondsDefault = 1_000
    /// Must be at least 5 heartbeats (as etcd checks) and at most 50 s.
    public var electionMilliseconds = electionMillisecondsDefault

    public static let requestTimeoutMillisecondsDefault = 7_000
    /// How long a write may wait for consensus before it fails with
    /// "etcdserver: request timed out" (etcd: 5 s plus an election).
    public var requestTimeoutMilliseconds = requestTimeoutMillisecondsDefault

    public static let maxRequestBytesDefault = MVCCSettings.requestBytesMaxDefault
    public static let maxRequestBytesRange = 1_024...(64 << 20)
    /// The largest request a client may send (etcd's --max-request-bytes).
    public var maxRequestBytes = maxRequestBytesDefault

    /// etcd's default: no limit beyond HTTP/2's own (2^32 - 1).
    public static let maxConcurrentStreamsDefault = Int(UInt32.max)
    public static let maxConcurrentStreamsRange = 1...Int(UInt32.max)
    /// Streams one client connection may have open at once (etcd's
    /// --max-concurrent-streams): HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS
    /// on gRPC connections, and the calls each URL's JSON gateway runs at once.
    public var maxConcurrentStreams = maxConcurrentStreamsDefault

    /// Origins whose browsers may call the client URLs' HTTP endpoints
    /// (etcd's --cors); "*" allows all, as by default.
    public var corsOrigins = ["*"]

    public static let quotaBackendBytesDefault = MVCCSettings.quotaBytesDefault
    public var quotaBackendBytes = quotaBackendBytesDefault

    public static let maxTxnOperationsDefault = MVCCSettings.txnOperationsMaxDefault
    public static let maxTxnOperationsRange = 1...1_000_000
    /// Operations in one transaction (etcd's --max-txn-ops).
    public var maxTxnOperations = maxTxnOperationsDefault

    /// bcrypt's cost for passwords (etcd's --bcrypt-cost); out of range, etcd
    /// warns and uses the default, and so does Ballot.
    public static let bcryptCostDefault = 10
    public static let bcryptCostRange = 4...31
    public var bcryptCost = bcryptCostDefault

    /// etcd's --auth-token: `simple`, or `jwt,` and its options (`JWTTokens`).
    public var authToken = "simple"

    /// How long a simple token lives unused (etcd's --auth-token-ttl, seconds).
    public static let authTokenTTLSecondsDefault = 300
    public static let authTokenTTLSecondsRange = 1...86_400
    public var authTokenTTLSeconds = authTokenTTLSecondsDefault

    public static let compactionBatchKeysDefault = MVCCSettings.compactionBatchKeysDefault
    public static let compactionBatchKeysRange = 1...1_000_000
    /// Keys compacted per store transaction (etcd's
    /// --experimental-compaction-batch-limit counts revisions; the idea is the same).
    public var compactionBatchKeys = compactionBatchKeysDefault

    /// What the member logs, and where (etcd's --log-level, --log-outputs).
    public var logLevel = Logger.Level.info
    public var logToStandardOutput = false

    public static let snapshotCountDefault: UInt64 = 100_000
    public static let snapshotCountRange: ClosedRange<UInt64> = 10...1_000_000_000
    /// Applied entries between log compactions (etcd's --snapshot-count).
    public var snapshotCount = snapshotCountDefault
    /// Entries kept behind each compaction so that a follower a little
    /// behind catches up from the log, not by a whole snapshot: etcd's 5000,
    /// or half the snapshot count when that is smaller.
    public var snapshotCatchUpEntries: UInt64 { min(Self.snapshotCatchUpEntriesMax, snapshotCount / 2) }
    public static let snapshotCatchUpEntriesMax: UInt64 = 5_000

    /// TLS for the client URLs and for the peer URLs: used on `https` URLs
    /// only, as in etcd.
    public var clientTLS = TLSSettings()
    public var peerTLS = TLSSettings()

    /// Ballot's `--peer-secret-file`: the file holding the secret every
    /// member proves it holds on every peer connection (`PeerSecret`);
    /// empty: no secret, members known by the IDs they claim (or by their
    /// certificates under peer TLS).
    public var peerSecretFile = ""

    /// Ballot's `--allow-plaintext-non-loopback`: without it, a plaintext
    /// (`http`) peer URL on an address other than loopback is refused at
    /// start, since anyone on the network could read what it carries. Such
    /// client URLs are only warned about, with or without it (etcd's own
    /// e2e suite serves clients on http://0.0.0.0).
    public var allowsPlaintextNonLoopback = false

    /// Ballot's `--lease-reads`: the Raft core keeps a leader lease, and a
    /// read that asks for it (`ReadConsistency.lease`) is answered from it
    /// with no round of messages. Off by default: the lease rests on the
    /// clock-drift bound below, which nothing checks.
    public var leaseReads = false
    /// Ballot's `--engine`: the consensus core every member of the cluster runs.
    public var engine = EngineKind.raft
    /// Ballot's `--lease-read-clock-drift-percent` (`RaftSettings.clockDriftBoundPercent`).
    public var leaseReadClockDriftPercent = RaftSettings.clockDriftBoundPercentDefault

    /// What etcd's --auto-compaction-mode and --auto-compaction-retention ask.
    public var autoCompaction = AutoCompaction.off

    /// Test-only (fault tests): the write-ahead log's syncs fail with EIO
    /// after this many (`WriteAheadLog.failSyncsAfter`). `ballot` sets it
    /// from `faultEnvironmentVariable` and logs a warning when it does.
    @_spi(FaultInjection) public var failWALSyncsAfter: Int?
    public static let faultEnvironmentVariable = "BALLOT_FAULT_WAL_SYNC_FAILS_AFTER"

    /// Test-only (power-cut tests): the store keeps a copy of itself as a
    /// power failure could leave it (`MVCCSettings.keepsPowerCutImage`).
    /// `ballot` sets it from `powerCutImageVariable` ("1").
    @_spi(FaultInjection) public var keepsPowerCutImage = false
    public static let powerCutImageVariable = "BALLOT_FAULT_POWER_CUT_IMAGE"

    /// Test-only: a bug the server's tests must catch, to prove they would.
    /// `ballot` sets it from `injectedBugVariable` (the bug's raw value).
    @_spi(FaultInjection) public var injectedBug: ServerBug?
    public static let injectedBugVariable = "BALLOT_INJECT_BUG"

    public enum ClusterState: String, Sendable { case new, existing }

    public init(
        name: String, dataDirectory: String, listenClient: [HostPort], advertiseClientURLs: [String],
        listenPeer: [HostPort], initialCluster: [(name: String, peer: HostPort)],
        initialClusterState: ClusterState = .new, clusterToken: String = "ballot-cluster"
    ) {
        self.name = name
        self.dataDirectory = dataDirectory
        self.listenClient = listenClient
        self.advertiseClientURLs = advertiseClientURLs
        self.listenPeer = listenPeer
        self.initialCluster = initialCluster
        self.initialClusterState = initialClusterState
        self.clusterToken = clusterToken
    }

    /// Checks a user can act on, before anything touches the disk.
    public func validated() throws(ConfigError) -> ServerConfig {
        guard Self.heartbeatMillisecondsRange.contains(heartbeatMilliseconds) else {
            throw .invalid("--heartbeat-interval must be in \(Self.heartbeatMillisecondsRange) ms")
        }
        guard electionMilliseconds >= 5 * heartbeatMilliseconds, electionMilliseconds <= 50_000 else {
            throw .invalid("--election-timeout must be at least 5 times --heartbeat-interval and at most 50000 ms")
        }
        guard Self.maxConcurrentStreamsRange.contains(maxConcurrentStreams) else {
            throw .invalid("--max-concurrent-streams must be in \(Self.maxConcurrentStreamsRange)")
        }
        guard Self.maxRequestBytesRange.contains(maxRequestBytes) else {
            throw .invalid("--max-request-bytes must be in \(Self.maxRequestBytesRange)")
        }
        guard Self.maxTxnOperationsRange.contains(maxTxnOperations) else {
            throw .invalid("--max-txn-ops must be in \(Self.maxTxnOperationsRange)")
        }
        guard Self.bcryptCostRange.contains(bcryptCost) else { throw .invalid("--bcrypt-cost must be in \(Self.bcryptCostRange)") }
        guard Self.authTokenTTLSecondsRange.contains(authTokenTTLSeconds) else {
            throw .invalid("--auth-token-ttl must be in \(Self.authTokenTTLSecondsRange)")
        }
        guard Self.compactionBatchKeysRange.contains(compactionBatchKeys) else {
            throw .invalid("--experimental-compaction-batch-limit must be in \(Self.compactionBatchKeysRange)")
        }
        guard !listenClient.isEmpty, !listenPeer.isEmpty else {
            throw .invalid("--listen-client-urls and --listen-peer-urls must each name at least one URL")
        }
        guard Self.snapshotCountRange.contains(snapshotCount) else {
            throw .invalid("--snapshot-count must be in \(Self.snapshotCountRange)")
        }
        try Self.validateTLS(clientTLS, flagPrefix: "", urls: listenClient) { url in
            "TLS key/cert (--cert-file, --key-file) must be provided for client url \(url.url) with HTTPS scheme"
        }
        try Self.validateTLS(peerTLS, flagPrefix: "peer-", urls: listenPeer) { url in
            "cannot listen on TLS for \(url.description): KeyFile and CertFile are not presented"
        }
        if !allowsPlaintextNonLoopback, let open = listenPeer.first(where: \.isPlaintextOnNetwork) {
            throw .invalid("--listen-peer-urls \(open.url): plaintext on an address other than loopback lets anyone on the network read the cluster's traffic and, without --peer-secret-file, speak for its members; serve https with --peer-cert-file and --peer-key-file (or --peer-auto-tls), or pass --allow-plaintext-non-loopback to accept that")
        }
        if let secure = listenMetrics.first(where: \.secure) {
            throw .invalid("--listen-metrics-urls: \(secure.url): the metrics listener serves plain HTTP; its endpoints are on the client URLs too, which serve TLS")
        }
        guard initialCluster.contains(where: { $0.name == name }) else {
            throw .invalid("--initial-cluster does not name this member ('\(name)')")
        }
        guard Set(initialCluster.map(\.name)).count == initialCluster.count else {
            throw .invalid("--initial-cluster names a member twice")
        }
        return self
    }

    /// etcd's refusals: an `https` URL needs a certificate (a file pair or
    /// auto-TLS); a certificate needs its key and the key its certificate.
    static func validateTLS(_ settings: TLSSettings, flagPrefix: String, urls: [HostPort],
                            missing: (HostPort) -> String) throws(ConfigError) {
        if settings.certFile.isEmpty != settings.keyFile.isEmpty {
            throw .invalid("--\(flagPrefix)cert-file and --\(flagPrefix)key-file: KeyFile and CertFile must both be present[key: \(settings.keyFile), cert: \(settings.certFile)]")
        }
        if let secure = urls.first(where: \.secure), settings.isEmpty { throw .invalid(missing(secure)) }
        _ = try PeerCertificateRule.from(allowedCN: settings.allowedCN, allowedHostname: settings.allowedHostname)
    }

    /// A member's ID, as etcd derives a founding member's: the first 8
    /// bytes (big-endian) of SHA-1 over its peer URL and the cluster token,
    /// so the same flags give the same IDs as etcd's, on every member.
    public static func memberID(peer: HostPort, token: String) -> NodeID {
        NodeID(max(1, firstWord(Insecure.SHA1.hash(data: Array((peer.url + token).utf8)))))
    }

    /// The ID `member add` gives a member, as etcd's does: SHA-1 over its
    /// sorted peer URLs and the time in seconds (and no token), so a member
    /// removed and added again at the same URL comes back under a new ID,
    /// which the members that remember the removal do not refuse.
    public static func addedMemberID(peerURLs: [String], unixSeconds: Int64) -> NodeID {
        NodeID(max(1, firstWord(Insecure.SHA1.hash(data: Array((peerURLs.sorted().joined() + "\(unixSeconds)").utf8)))))
    }

    /// This member's advertised peer address (validated() checks it is listed).
    public var advertisedPeer: HostPort { initialCluster.first { $0.name == name }!.peer }

    /// The ID the cluster gave this member, when its flags do not say it: a
    /// member added with `member add` learns it from the members as it
    /// joins (`ClusterDiscovery`), and its data directory keeps it.
    public var assignedMemberID: NodeID?

    /// This member's ID: assigned, or derived from the flags as a founder's.
    public var memberID: NodeID { assignedMemberID ?? Self.memberID(peer: advertisedPeer, token: clusterToken) }

    /// The members `--initial-cluster` founds the cluster with.
    public var foundingVoters: Set<NodeID> {
        Set(initialCluster.map { Self.memberID(peer: $0.peer, token: clusterToken) })
    }

    /// The ID of the cluster `--initial-cluster` founds, as etcd derives it:
    /// SHA-1 over the founding members' IDs, sorted, each 8 bytes
    /// big-endian. A member joining later learns it from the members
    /// (`ClusterDiscovery`); a restarted one reads it from its data directory.
    public var foundingClusterID: UInt64 {
        let ids = initialCluster.map { Self.memberID(peer: $0.peer, token: clusterToken).rawValue }.sorted()
        var bytes: [UInt8] = []
        for id in ids { withUnsafeBytes(of: id.bigEndian) { bytes.append(contentsOf: $0) } }
        return max(1, Self.firstWord(Insecure.SHA1.hash(data: bytes)))
    }

    static func firstWord(_ digest: Insecure.SHA1Digest) -> UInt64 {
        digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Raft settings from etcd's millisecond flags: one tick per heartbeat.
    public var raftSettings: RaftSettings {
        var settings = RaftSettings()
        settings.heartbeatTicks = 1
        settings.electionTicks = max(2, electionMilliseconds / heartbeatMilliseconds)
        // The shell refuses commands over --max-request-bytes; the core's own
        // limit must never refuse one the shell accepted.
        settings.entryBytesMax = min(RaftSettings.entryBytesMaxLimit, maxRequestBytes + Self.commandOverheadBytes)
        if leaseReads { settings.readMode = .leaseBased }
        settings.clockDriftBoundPercent = leaseReadClockDriftPercent
        return settings
    }

    /// Multi-Paxos settings from the same flags as Raft's (`--engine paxos`).
    public var paxosSettings: PaxosSettings {
        var settings = PaxosSettings()
        settings.heartbeatTicks = 1
        settings.electionTicks = max(2, electionMilliseconds / heartbeatMilliseconds)
        settings.entryBytesMax = min(PaxosSettings.entryBytesMaxLimit, maxRequestBytes + Self.commandOverheadBytes)
        if leaseReads { settings.readMode = .leaseBased }
        settings.clockDriftBoundPercent = leaseReadClockDriftPercent
        return settings
    }

    /// Room for what a log entry adds around a client's request.
    static let commandOverheadBytes = 4_096
}

/// A TCP endpoint, parsed from etcd-style URLs (`http://127.0.0.1:2379`,
/// `https://localhost:2380`): `secure` says whether it speaks TLS.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// A host name or address; for a Unix socket, the socket's path.
    public var host: String
    /// The TCP port (0: any free port, for listeners); 0 for a Unix socket.
    public var port: Int
    /// An `https` (or `unixs`) URL: the listener or dialler speaks TLS.
    public var secure: Bool
    /// A `unix://path` (or `unixs://path`) URL: a Unix domain socket at
    /// `host`, as etcd listens on and dials for such peer and client URLs.
    public var unixSocket: Bool

    public init(host: String, port: Int, secure: Bool = false, unixSocket: Bool = false) {
        self.host = host
        self.port = port
        self.secure = secure
        self.unixSocket = unixSocket
    }

    /// Accepts `http://host:port`, `https://host:port` and `host:port`,
    /// where host is an IPv4 address, a bracketed IPv6 address or a name
    /// (`localhost`), resolved when bound or dialled; port 0 asks for any
    /// free port, as in etcd. `unix://path` and `unixs://path` name a Unix
    /// socket (etcd's path is the URL's host, so `unix://etcd.unix:1` is
    /// the socket `etcd.unix:1` in the working directory).
    public init(url: String) throws(ConfigError) {
        var rest = Substring(url)
        for scheme in ["unixs://", "unix://"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            while rest.hasSuffix("/") { rest = rest.dropLast() }
            guard !rest.isEmpty, !rest.contains("/") else { throw .invalid("\(url) is not a URL of the form unix://path") }
            self.init(host: String(rest), port: 0, secure: scheme == "unixs://", unixSocket: true)
            return
        }
        let secure = rest.hasPrefix("https://")
        if rest.hasPrefix("https://") { rest = rest.dropFirst(8) } else if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (0...65_535).contains(port), colon > rest.startIndex, !rest[..<colon].contains("/")
        else { throw .invalid("\(url) is not a URL of the form http://host:port") }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.init(host: String(host), port: port, secure: secure)
    }

    public var description: String {
        if unixSocket { return host }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
    /// As Go's `url.URL.String()` writes it: what a member's ID hashes.
    public var url: String {
        if unixSocket { return "\(secure ? "unixs" : "unix")://\(host)" }
        return "\(secure ? "https" : "http")://\(description)"
    }
    /// Reachable from this machine only: a Unix socket, `localhost`, or a
    /// loopback address (127.0.0.0/8, ::1). Anything else, the wildcard
    /// 0.0.0.0 included, is reachable from the network.
    public var isLoopback: Bool {
        if unixSocket { return true }
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" { return true }
        return isIPAddress && !name.contains(":") && name.hasPrefix("127.")
    }

    /// Plaintext that the network can reach: anyone on it can read what
    /// this URL carries.
    var isPlaintextOnNetwork: Bool { !secure && !isLoopback }

    /// The host as a literal IP address, if it is one: a TLS client names
    /// the server it expects only by host name (SNI), never by address.
    var isIPAddress: Bool { host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." } }
    /// The name a TLS client expects in the certificate (none for an address or a socket).
    var serverHostname: String? { unixSocket || isIPAddress ? nil : host }
}

public enum ConfigError: Error, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let message): message }
    }
}
