import Consensus
import Logging
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

    public static let quotaBackendBytesDefault = MVCCSettings.quotaBytesDefault
    public var quotaBackendBytes = quotaBackendBytesDefault

    public static let maxTxnOperationsDefault = MVCCSettings.txnOperationsMaxDefault
    public static let maxTxnOperationsRange = 1...1_000_000
    /// Operations in one transaction (etcd's --max-txn-ops).
    public var maxTxnOperations = maxTxnOperationsDefault

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

    /// What etcd's --auto-compaction-mode and --auto-compaction-retention ask.
    public var autoCompaction = AutoCompaction.off

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
        guard Self.maxRequestBytesRange.contains(maxRequestBytes) else {
            throw .invalid("--max-request-bytes must be in \(Self.maxRequestBytesRange)")
        }
        guard Self.maxTxnOperationsRange.contains(maxTxnOperations) else {
            throw .invalid("--max-txn-ops must be in \(Self.maxTxnOperationsRange)")
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
        guard initialCluster.contains(where: { $0.name == name }) else {
            throw .invalid("--initial-cluster does not name this member ('\(name)')")
        }
        guard Set(initialCluster.map(\.name)).count == initialCluster.count else {
            throw .invalid("--initial-cluster names a member twice")
        }
        return self
    }

    /// A member's ID: a hash of its advertised peer address and the cluster
    /// token, so the same flags give the same IDs on every member.
    public static func memberID(peer: HostPort, token: String) -> NodeID {
        NodeID(max(1, fnv1a("\(peer)|\(token)")))
    }

    /// This member's advertised peer address (validated() checks it is listed).
    public var advertisedPeer: HostPort { initialCluster.first { $0.name == name }!.peer }

    public var memberID: NodeID { Self.memberID(peer: advertisedPeer, token: clusterToken) }

    /// The cluster's ID, from its token alone, so a member joining later
    /// (whose --initial-cluster lists itself too) computes the same one:
    /// give each cluster its own --initial-cluster-token, as etcd advises.
    public var clusterID: UInt64 {
        max(1, Self.fnv1a("ballot-cluster|" + clusterToken))
    }

    /// Raft settings from etcd's millisecond flags: one tick per heartbeat.
    public var raftSettings: RaftSettings {
        var settings = RaftSettings()
        settings.heartbeatTicks = 1
        settings.electionTicks = max(2, electionMilliseconds / heartbeatMilliseconds)
        // The shell refuses commands over --max-request-bytes; the core's own
        // limit must never refuse one the shell accepted.
        settings.entryBytesMax = min(RaftSettings.entryBytesMaxLimit, maxRequestBytes + Self.commandOverheadBytes)
        return settings
    }

    /// Room for what a log entry adds around a client's request.
    static let commandOverheadBytes = 4_096

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}

/// A TCP endpoint, parsed from etcd-style URLs (`http://127.0.0.1:2379`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Accepts `http://host:port` and `host:port`, where host is an IPv4
    /// address, a bracketed IPv6 address or a name (`localhost`), resolved
    /// when bound or dialled; refuses `https` (no TLS yet).
    public init(url: String) throws(ConfigError) {
        var rest = Substring(url)
        if rest.hasPrefix("https://") { throw .invalid("\(url): TLS is not supported yet; use http://") }
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (1...65_535).contains(port), colon > rest.startIndex, !rest[..<colon].contains("/")
        else { throw .invalid("\(url) is not a URL of the form http://host:port") }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    public var url: String { "http://\(description)" }
}

public enum ConfigError: Error, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let message): message }
    }
}
