import ArgumentParser
import Foundation
import Logging
import Server

/// The Ballot server. Flags follow etcd's names where the concept matches,
/// so an etcd member's command line mostly carries over.
@main
struct Ballot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballot",
        abstract: "A strongly consistent, replicated key-value store that speaks etcd's v3 API.",
        subcommands: [Serve.self, Dev.self],
        defaultSubcommand: Serve.self)
}

/// Runs one member (the default subcommand).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run one member (the default: `ballot --name … ` runs this).")

    @Option(help: "Human-readable name for this member.") var name = "default"
    @Option(help: "Path to the data directory.") var dataDir: String?
    @Option(help: "URL to listen on for client traffic (one, http://host:port).")
    var listenClientUrls = "http://127.0.0.1:2379"
    @Option(help: "Client URLs to advertise to the rest of the cluster (comma-separated).")
    var advertiseClientUrls: String?
    @Option(help: "URL to listen on for peer traffic.") var listenPeerUrls = "http://127.0.0.1:2380"
    @Option(help: "URL for /metrics, /health and /readyz (default: the client port + 2, e.g. 2381); 'none' turns them off.")
    var listenMetricsUrls: String?
    @Option(help: "This member's peer URL, as the rest of the cluster reaches it.")
    var initialAdvertisePeerUrls: String?
    @Option(help: "Founding members: name=http://host:port,… (default: this member alone).")
    var initialCluster: String?
    @Option(help: "new (bootstrap) or existing (join).") var initialClusterState = "new"
    @Option(help: "Cluster token: members only talk to members with the same one.")
    var initialClusterToken = "ballot-cluster"
    @Option(help: "Time (ms) of a heartbeat interval.") var heartbeatInterval = ServerConfigDefaults.heartbeat
    @Option(help: "Time (ms) for an election to time out.") var electionTimeout = ServerConfigDefaults.election
    @Option(help: "Applied entries between compactions of the log.")
    var snapshotCount = ServerConfigDefaults.snapshotCount
    @Option(help: "Raise the NOSPACE alarm when the backend exceeds this many bytes.")
    var quotaBackendBytes = ServerConfigDefaults.quota
    @Option(help: "Largest request a client may send, in bytes.") var maxRequestBytes = ServerConfigDefaults.maxRequest
    @Option(help: "Auto compaction mode: periodic (keep a duration of history) or revision (keep a number of revisions).")
    var autoCompactionMode = "periodic"
    @Option(help: "Auto compaction retention: a duration (1h, 30m; a bare number means hours) or a revision count; 0 disables it.")
    var autoCompactionRetention = "0"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "ballot")
        logger[metadataKey: "member"] = "\(name)"
        let config = try makeConfig()
        let server: BallotServer
        do {
            server = try BallotServer(config: config, logger: logger)
        } catch {
            logger.critical("refusing to start: \(error)")
            throw ExitCode(2)
        }
        let task = Task { try await server.run() }
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.info("signal received; stopping", metadata: ["signal": "\(number)"])
                task.cancel()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        try await task.value
    }

    func makeConfig() throws -> ServerConfig {
        let listenClient = try HostPort(url: single(listenClientUrls, flag: "--listen-client-urls"))
        let listenPeer = try HostPort(url: single(listenPeerUrls, flag: "--listen-peer-urls"))
        let advertisedPeer = try HostPort(url: single(initialAdvertisePeerUrls ?? listenPeerUrls, flag: "--initial-advertise-peer-urls"))
        var cluster: [(name: String, peer: HostPort)] = []
        for item in (initialCluster ?? "\(name)=\(advertisedPeer.url)").split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--initial-cluster: '\(item)' is not name=http://host:port") }
            cluster.append((String(parts[0]), try HostPort(url: String(parts[1]))))
        }
        guard let state = ServerConfig.ClusterState(rawValue: initialClusterState) else {
            throw ValidationError("--initial-cluster-state must be new or existing")
        }
        guard cluster.first(where: { $0.name == name })?.peer == advertisedPeer else {
            throw ValidationError("--initial-cluster must list this member (\(name)) at its --initial-advertise-peer-urls (\(advertisedPeer.url))")
        }
        var config = ServerConfig(
            name: name, dataDirectory: dataDir ?? "\(name).ballot", listenClient: listenClient,
            advertiseClientURLs: (advertiseClientUrls ?? listenClient.url).split(separator: ",").map(String.init),
            listenPeer: listenPeer, initialCluster: cluster, initialClusterState: state, clusterToken: initialClusterToken)
        if listenMetricsUrls != "none" {
            config.listenMetrics = try listenMetricsUrls.map { try HostPort(url: single($0, flag: "--listen-metrics-urls")) }
                ?? HostPort(host: listenClient.host, port: listenClient.port + 2)
        }
        config.heartbeatMilliseconds = heartbeatInterval
        config.electionMilliseconds = electionTimeout
        config.quotaBackendBytes = quotaBackendBytes
        config.maxRequestBytes = maxRequestBytes
        config.snapshotCount = snapshotCount
        do {
            config.autoCompaction = try AutoCompaction(mode: autoCompactionMode, retention: autoCompactionRetention)
            return try config.validated()
        } catch {
            throw ValidationError(error.description)
        }
    }

    private func single(_ urls: String, flag: String) throws -> String {
        let list = urls.split(separator: ",")
        guard list.count == 1 else { throw ValidationError("\(flag) takes one URL for now, got \(list.count)") }
        return String(list[0])
    }
}

/// Named defaults the flags show in --help.
enum ServerConfigDefaults {
    static let heartbeat = ServerConfig.heartbeatMillisecondsDefault
    static let election = ServerConfig.electionMillisecondsDefault
    static let quota = ServerConfig.quotaBackendBytesDefault
    static let maxRequest = ServerConfig.maxRequestBytesDefault
    static let snapshotCount = ServerConfig.snapshotCountDefault
}
