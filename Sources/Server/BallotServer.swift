import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import Logging
import NIOPosix
import NIOSSL
import Engines
import MultiPaxos
import Raft
import StateMachine
@_spi(FaultInjection) import Storage

/// One running member: storage opened and recovered, the node's event loop, the
/// peer transport, and the gRPC servers for clients and peers.
public final class BallotServer: Sendable {
    public let config: ServerConfig
    let node: Node
    /// The node's event loop (one thread): its turns and its peer connections.
    let nodeLoop: MultiThreadedEventLoopGroup
    let members: MemberDirectory
    let logger: Logger
    let metrics = ServerMetrics()
    /// TLS for the client URLs and the peer URLs, if configured.
    let clientTLS: TLSSource?
    let peerTLS: TLSSource?
    /// `--peer-secret-file`'s secret, which every peer connection proves.
    let peerSecret: PeerSecret?

    /// A member as `ballot` starts one: its TLS made once, an etcd data
    /// directory imported, the cluster it belongs to and its own ID found
    /// (`identity(for:dialling:logger:)`), then opened.
    public static func open(config: ServerConfig, logger: Logger) async throws -> BallotServer {
        var config = try config.validated()
        let (clientTLS, peerTLS) = try tlsContexts(config, logger: logger)
        try EtcdDataMigration.importIfPresent(config: config, storeSettings: storeSettings(config), logger: logger)
        let identity = try await identity(for: config, dialling: try peerTLS?.current().client ?? TLSContexts.defaultClient(),
                                          rule: peerTLS?.current().certificateRule, logger: logger)
        config.assignedMemberID = identity.member
        return try BallotServer(config: config, clusterID: identity.cluster, discovered: identity.members,
                                clientTLS: clientTLS, peerTLS: peerTLS, logger: logger)
    }

    /// A member of the cluster `--initial-cluster` founds (tests).
    public convenience init(config: ServerConfig, logger: Logger) throws {
        let config = try config.validated()
        let (clientTLS, peerTLS) = try Self.tlsContexts(config, logger: logger)
        try self.init(config: config, clusterID: config.foundingClusterID, discovered: nil, clientTLS: clientTLS, peerTLS: peerTLS, logger: logger)
    }

    /// Opens the data directory and recovers; refuses (throwing an error
    /// that names the damaged file) rather than start from doubtful state.
    private init(config: ServerConfig, clusterID: UInt64, discovered: [PeerFrame.DiscoveredMember]?,
                 clientTLS: TLSSource?, peerTLS: TLSSource?, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let id = config.memberID
        let directory = try DataDirectory.open(config.dataDirectory, clusterID: clusterID, memberID: id.rawValue, engine: config.engine.rawValue)
        self.clientTLS = clientTLS
        self.peerTLS = peerTLS
        self.peerSecret = config.peerSecretFile.isEmpty ? nil : try PeerSecret.load(path: config.peerSecretFile)
        for url in config.listenClient + config.listenPeer where url.isPlaintextOnNetwork {
            logger.warning("a listener is open to the network in plaintext: anyone who can reach it can read what it carries", metadata: ["url": "\(url.url)"])
        }
        let (wal, recovery) = try WriteAheadLog.open(directory: directory.walPath)
        if let failAfter = config.failWALSyncsAfter {
            logger.warning("fault injection: the write-ahead log's syncs fail after this many", metadata: ["syncs": "\(failAfter)"])
            wal.failSyncsAfter = failAfter
        }
        if config.keepsPowerCutImage {
            logger.warning("fault injection: the store keeps a copy of itself as a power failure could leave it", metadata: ["file": "\(MVCCStore.powerCutImageName)"])
        }
        if let bug = config.injectedBug {
            logger.warning("bug injection: this member runs with a known bug, for a test to catch", metadata: ["bug": "\(bug.rawValue)"])
        }
        if let torn = recovery.truncatedTail {
            logger.warning("cut a torn record at the tail of the write-ahead log (a crash mid-write; it was never acknowledged)", metadata: ["at": "\(torn)"])
        }
        let store = try MVCCStore(directory: directory.dbPath, settings: Self.storeSettings(config))
        let snapshots = SnapshotStore(directory: directory.snapPath)
        let members = try MemberDirectory(config: config, recorded: store.members(), discovered: discovered)
        self.members = members
        let seed = UInt64.random(in: 1...UInt64.max)
        let core: AnyEngine
        /// The configured engine's core, bootstrapped or restarted from `state`.
        func makeCore(bootstrap: Membership? = nil, state: DurableState = .empty, applied: LogIndex? = nil) throws(SettingsError) -> AnyEngine {
            switch config.engine {
            case .raft:
                if let bootstrap { return AnyEngine(try RaftCore(id: id, bootstrap: bootstrap, settings: config.raftSettings, seed: seed)) }
                return AnyEngine(try RaftCore(id: id, settings: config.raftSettings, seed: seed, state: state, applied: applied))
            case .paxos:
                if let bootstrap { return AnyEngine(try PaxosCore(id: id, bootstrap: bootstrap, settings: config.paxosSettings, seed: seed)) }
                return AnyEngine(try PaxosCore(id: id, settings: config.paxosSettings, seed: seed, state: state, applied: applied))
            }
        }
        let fresh = recovery.hardState.term == .zero && recovery.entries.isEmpty && recovery.snapshot == nil
        let imported = try store.importAwaitsLog()
        if fresh && store.appliedIndex > .zero && !imported {
            // The store applied entries the log no longer has: the log,
            // with the votes in its hard state, was emptied or replaced.
            throw StorageError.corrupt(
                path: directory.walPath,
                detail: "holds no log, but the store applied through index \(store.appliedIndex); " + DataDirectory.lostLogAdvice)
        }
        if fresh && imported {
            // Data imported from etcd (`EtcdDataMigration`): the log starts
            // as compacted through the snapshot the store stands for, so a
            // member added later gets the data by a snapshot.
            guard let state = try store.appliedState() else {
                throw StorageError.corrupt(path: directory.dbPath, detail: "an import without its consensus state")
            }
            let hardState = HardState(term: state.term, vote: nil, commit: state.index)
            try wal.append(snapshot: SnapshotMarker(index: state.index, term: state.term, replacesLog: true, membership: state.membership))
            try wal.append(hardState: hardState, entries: [])
            try wal.sync()
            try store.logRecordedImport()
            core = try makeCore(state: DurableState(hardState: hardState, snapshot: state), applied: state.index)
            logger.info("founding a new cluster on imported data", metadata: [
                "cluster": "\(String(clusterID, radix: 16))", "members": "\(state.membership.voters.count)", "revision": "\(store.currentRevision)",
            ])
        } else if fresh && config.initialClusterState == .new {
            let voters = config.foundingVoters
            core = try makeCore(bootstrap: Membership(voters: voters))
            logger.info("bootstrapping a new cluster", metadata: [
                "cluster": "\(String(clusterID, radix: 16))", "members": "\(voters.count)", "engine": "\(config.engine)",
            ])
        } else {
            let snapshot = recovery.snapshot
            if let snapshot, snapshot.replacesLog, store.appliedIndex < snapshot.index {
                // A crash between recording an installed snapshot in the log
                // and swapping the store: finish the install from its file.
                guard let info = try snapshots.snapshot(at: snapshot.index) else {
                    throw StorageError.corrupt(
                        path: directory.snapPath,
                        detail: "the write-ahead log installed the snapshot at index \(snapshot.index) but no complete snapshot file for it is here")
                }
                logger.info("finishing the install of a snapshot", metadata: ["index": "\(snapshot.index)", "bytes": "\(info.size)"])
                try store.replace(with: info, from: snapshots) { done, total in
                    logger.info("snapshot install progress", metadata: ["written": "\(done)", "total": "\(total)"])
                }
            }
            let last = recovery.entries.last?.index ?? snapshot?.index ?? .zero
            if store.appliedIndex > last {
                throw StorageError.corrupt(
                    path: directory.dbPath,
                    detail: "the store applied index \(store.appliedIndex) but the write-ahead log ends at \(last)")
            }
            if let snapshot, store.appliedIndex < snapshot.index {
                throw StorageError.corrupt(
                    path: directory.dbPath,
                    detail: "the store applied index \(store.appliedIndex) but the write-ahead log was compacted through \(snapshot.index)")
            }
            // A crash after the log recorded an import's snapshot, before the store heard.
            if imported { try store.logRecordedImport() }
            let state = DurableState(hardState: recovery.hardState, snapshot: snapshot?.metadata, entries: recovery.entries)
            core = try makeCore(state: state, applied: store.appliedIndex)
            logger.info("recovered", metadata: [
                "term": "\(recovery.hardState.term)", "compacted": "\(snapshot?.index ?? .zero)",
                "entries": "\(recovery.entries.count)", "applied": "\(store.appliedIndex)",
            ])
        }
        let metrics = self.metrics
        let defaultDialling = try TLSContexts.defaultClient()
        let dialling: @Sendable () -> NIOSSLContext = { peerTLS?.current().client ?? defaultDialling }
        let leases = try store.leases()
        // The node's turns and its peer and client connections share one thread of their own.
        let nodeLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.nodeLoop = nodeLoop
        let transport = PeerTransport(selfID: id, clusterID: clusterID, engine: config.engine, peers: members.peerAddresses,
                                      tls: dialling, certificateRule: peerTLS?.current().certificateRule, secret: peerSecret, logger: logger,
                                      traffic: metrics.peerTraffic, loop: nodeLoop.next())
        let auth = AuthStore()
        try auth.load(from: store)
        self.node = Node(id: id, clusterID: clusterID, core: core, wal: wal, store: store, snapshots: snapshots, transport: transport,
                         leases: leases, members: members, metrics: metrics, config: config, loop: nodeLoop.next(), logger: logger,
                         auth: auth)
    }

    /// The store's settings from the member's flags.
    static func storeSettings(_ config: ServerConfig) -> MVCCSettings {
        var settings = MVCCSettings()
        // The quota is checked before proposing, and the NOSPACE alarm is
        // replicated (as etcd does): each member's file size differs, so a
        // check at apply time could let members decide differently.
        settings.quotaBytes = Int.max
        // --max-request-bytes is the one size limit users set, as in etcd.
        settings.requestBytesMax = config.maxRequestBytes
        settings.valueBytesMax = config.maxRequestBytes
        settings.keyBytesMax = config.maxRequestBytes
        settings.leasesMustExist = true
        settings.txnOperationsMax = config.maxTxnOperations
        settings.compactionBatchKeys = config.compactionBatchKeys
        // The write-ahead log replays what the store lost; the store needs
        // commits that are never torn, not commits that are never lost:
        // commits flush nothing, and a checkpoint every
        // `checkpointInterval` flushes them all at once and is the state a
        // crash returns to (etcd commits its backend every 100 ms). The
        // log is compacted only through what `MVCCStore.sync()` (a
        // checkpoint) made durable (`Node.compactLogIfDue`).
        settings.commitDurability = .checkpointed
        settings.keepsPowerCutImage = config.keepsPowerCutImage
        return settings
    }

    public var memberID: NodeID { node.id }

    /// The cluster this member belongs to and its own ID: those its data
    /// directory was made for (a directory from before member IDs were
    /// recorded: the ID its flags derive); or, on an empty one, those
    /// `--initial-cluster` founds (`new`), or those the members it names
    /// say (`existing`: a member joining after `member add`, as etcd's asks
    /// its peers, dialling them with `dialling`), with every member's peer URL.
    static func identity(for config: ServerConfig, dialling tls: NIOSSLContext, rule: PeerCertificateRule?, logger: Logger) async throws
        -> (cluster: UInt64, member: NodeID, members: [PeerFrame.DiscoveredMember]?) {
        if let recorded = DataDirectory.recordedClusterID(config.dataDirectory) {
            return (recorded, DataDirectory.recordedMemberID(config.dataDirectory).map { NodeID($0) } ?? config.memberID, nil)
        }
        if config.initialClusterState == .new { return (config.foundingClusterID, config.memberID, nil) }
        let others = config.initialCluster.filter { $0.name != config.name }.map(\.peer)
        guard !others.isEmpty else {
            throw ConfigError.invalid("--initial-cluster-state=existing: --initial-cluster names no member besides this one to join")
        }
        let found = try await ClusterDiscovery.discover(asking: others, peerURL: config.advertisedPeer.url, tls: tls, rule: rule, logger: logger)
        return (found.clusterID, found.memberID, found.members)
    }

    /// The client side's and the peer side's TLS contexts.
    static func tlsContexts(_ config: ServerConfig, logger: Logger) throws -> (client: TLSSource?, peer: TLSSource?) {
        (try tlsContexts(config.clientTLS, side: "client", urls: config.listenClient, dataDirectory: config.dataDirectory,
                         alpn: TLSContexts.clientALPN, logger: logger),
         try tlsContexts(config.peerTLS, side: "peer", urls: config.listenPeer, dataDirectory: config.dataDirectory,
                         alpn: [], logger: logger))
    }

    /// One side's TLS contexts (nil without TLS settings), from its
    /// certificate files or, for auto-TLS, the self-signed pair under
    /// `<data-dir>/fixtures/<side>`; logs etcd's warnings for settings
    /// that have no effect.
    static func tlsContexts(_ settings: TLSSettings, side: String, urls: [HostPort], dataDirectory: String,
                            alpn: [String], logger: Logger) throws -> TLSSource? {
        guard !settings.isEmpty else { return nil }
        let flagPrefix = side == "peer" ? "peer-" : ""
        if settings.autoTLS && settings.hasCertificate {
            logger.warning("ignoring \(side) auto TLS since certs given")
        }
        for url in urls where !url.secure {
            logger.warning("scheme is HTTP while TLS settings are present; this URL stays plaintext", metadata: ["\(side)-url": "\(url.url)"])
        }
        let identity: TLSContexts.Identity
        if settings.hasCertificate {
            identity = .init(certFile: settings.certFile, keyFile: settings.keyFile, selfSigned: false)
        } else {
            let files = try SelfSignedCertificate.ensure(in: dataDirectory + "/fixtures/" + side, hosts: urls.filter { !$0.unixSocket }.map(\.host))
            identity = .init(certFile: files.certFile, keyFile: files.keyFile, selfSigned: true)
            logger.info("serving TLS with a self-signed certificate", metadata: ["side": "\(side)", "cert": "\(files.certFile)"])
        }
        do {
            return try TLSSource(settings, identity: identity, alpn: alpn, side: side, logger: logger)
        } catch {
            throw ConfigError.invalid(
                "--\(flagPrefix)cert-file \(identity.certFile), --\(flagPrefix)key-file \(identity.keyFile), --\(flagPrefix)trusted-ca-file \(settings.trustedCAFile): cannot load: \(error)")
        }
    }

    /// Serve until the task is cancelled, then stop cleanly: gRPC servers
    /// drain, the node loop stops, the log is closed.
    public func run() async throws {
        // JWT keys load first: options etcd refuses stop the start here.
        if let jwt = node.jwt {
            do {
                _ = try await jwt.value
            } catch {
                throw ConfigError.invalid("--auth-token \(config.authToken): \(error)")
            }
        }
        // The JSON gateway and the Lock and Election services reach the
        // member's services through a gRPC server of their own, in process
        // (etcd's gateway dials its own gRPC server; its lock and election
        // servers use an in-process client).
        let inProcess = LocalTransport.make()
        let localClient = GRPCClient(transport: inProcess.client, interceptors: [ForwardedCredentialsInterceptor()])
        let local = LocalClient(localClient)
        let services: [any RegistrableRPCService] = [
            KVService(node: node),
            MaintenanceService(node: node, dataDirectory: config.dataDirectory),
            ClusterService(node: node),
            WatchService(node: node),
            LeaseService(node: node),
            AuthService(node: node),
            LockService(client: local),
            ElectionService(client: local),
        ]
        let interceptors: [any ServerInterceptor] = [
            MetricsInterceptor(metrics: metrics), AuditInterceptor(node: node), RequireLeaderInterceptor(node: node), CredentialsInterceptor(),
            ReadConsistencyInterceptor(),
        ]
        var wire = GRPCWireSettings(maxRequestMessageBytes: config.maxRequestBytes + Self.grpcOverheadBytes,
                                    maxConcurrentStreams: config.maxConcurrentStreams)
        wire.clientCertificateUsers = config.clientTLS.clientCertAuth
        let gatewayServer = GRPCServer(transport: inProcess.server, services: services, interceptors: interceptors)
        let gateway = JSONGateway(client: localClient,
                                  maxRequestBytes: config.maxRequestBytes, overheadBytes: Self.grpcOverheadBytes)
        // Each client URL serves gRPC and the HTTP endpoints on one port.
        let listeners = try await ClientListener.bind(
            config.listenClient, tls: clientTLS, route: { uri in self.operationsAnswer(uri) },
            gateway: gateway, gatewayStreamsMax: config.maxConcurrentStreams, corsOrigins: config.corsOrigins,
            unary: UnaryCalls(kv: KVService(node: node), metrics: metrics), wire: wire,
            connectionLoop: nodeLoop.next())
        let clientServers = listeners.map { listener in
            GRPCServer(transport: listener.transport, services: services, interceptors: interceptors)
        }
        let peerListeners = config.listenPeer.map {
            PeerListener(node: node, members: members, address: $0, tls: peerTLS, certificateRule: peerTLS?.current().certificateRule,
                         secret: peerSecret,
                         traffic: metrics.peerTraffic)
        }
        node.start()
        logger.info("serving", metadata: [
            "name": "\(config.name)", "member": "\(String(node.id.rawValue, radix: 16))",
            "client": "\(config.listenClient.map(\.url))", "peer": "\(config.listenPeer.map(\.url))",
        ])
        defer {
            for listener in listeners { listener.stopListening() }
            node.transport.shutdown()
            node.stop()
            // Closes what peer connections are left; the thread ends with it.
            nodeLoop.shutdownGracefully { _ in }
            logger.info("stopped", metadata: ["name": "\(config.name)"])
        }
        do {
            try await serve(clientServers, gateway: (gatewayServer, gateway.client), peerListeners)
        } catch where Task.isCancelled {
            // Asked to stop: the servers' cancellation is the expected end.
        } catch is MemberRemoved {
            // Removed from the cluster: a clean end, not a failure.
        }
    }

    private func serve(_ clientServers: [GRPCServer<ClientGRPCTransport>],
                       gateway: (server: GRPCServer<LocalTransport.Server>, client: GRPCClient<LocalTransport.Client>),
                       _ peerListeners: [PeerListener]) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for listener in peerListeners { group.addTask { try await listener.run() } }
            group.addTask { await self.node.transport.run() }
            group.addTask {
                // Clients are served once this member is part of the
                // cluster, as etcd's serve only after publishing: a leader
                // is known and the log is applied up to the member's own
                // record, so the first answers are not stale.
                await self.publish()
                guard !Task.isCancelled else { return }
                // etcd's lines at this point, word for word: tools (etcd's
                // own e2e suite among them) wait for them to know a member
                // is up. The cluster version is fixed at 3.4.
                self.logger.info("published local member to cluster through raft", metadata: ["name": "\(self.config.name)"])
                self.logger.info("enabled capabilities for version \(MaintenanceService.clusterMinorVersion)")
                self.logger.info("ready to serve client requests", metadata: ["client": "\(self.config.listenClient.map(\.url))"])
                try await withThrowingDiscardingTaskGroup { servers in
                    for server in clientServers { servers.addTask { try await server.serve() } }
                    servers.addTask { try await gateway.server.serve() }
                    servers.addTask { try await gateway.client.runConnections() }
                }
            }
            group.addTask { try await self.stopWhenRemoved() }
            if self.config.autoCompaction != .off {
                group.addTask { await self.compactAutomatically() }
            }
            for address in self.config.listenMetrics {
                let operations = OperationsHTTPServer(address: address) { path in self.operationsAnswer(path) }
                group.addTask { try await operations.run() }
            }
            group.addTask {
                // Until cancelled; then drain the servers so serve() returns.
                try? await Task.sleep(for: .seconds(365 * 24 * 3600))
                for server in clientServers { server.beginGracefulShutdown() }
                gateway.client.beginGracefulShutdown()
                gateway.server.beginGracefulShutdown()
                self.node.transport.shutdown()
            }
        }
    }

    /// A member removed from the configuration stops itself, as etcd's do:
    /// it can no longer vote or be written to, and running on would only
    /// confuse clients that still list it.
    /// It learns it from its peers, which refuse its messages once they have
    /// applied the removal: the removed member itself may never see the
    /// removal commit, since the leader stops replicating to it.
    /// Or from its own committed configuration, once one that named it
    /// leaves it out (a Multi-Paxos member removed hears the removal chosen,
    /// then nothing more, as its leader stops sending to it), as etcd's
    /// member stops on applying its own removal. A member that joined is
    /// not named until its addition is committed: only a member once named
    /// is removed by not being named.
    func stopWhenRemoved() async throws {
        var named = false
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(200))
            // The governing configuration: a Multi-Paxos member removed still
            // counts in quorums until the change governs, α slots later.
            let members = node.status.governingMembers
            if members.contains(node.id) { named = true }
            if node.transport.removed.isRaised || (named && !members.isEmpty && !members.contains(node.id)) {
                logger.warning("this member was removed from the cluster; stopping")
                // A leader that removed itself still owes the member that
                // forwarded the removal its answer: let it go out first.
                try await Task.sleep(for: .seconds(Self.removedGraceSeconds))
                throw MemberRemoved()
            }
        }
    }

    /// How long a removed member keeps running to send answers it owes.
    static let removedGraceSeconds = 1.0

    struct MemberRemoved: Error, CustomStringConvertible {
        var description: String { "this member was removed from the cluster" }
    }

    /// What `/metrics`, `/health`, `/version` and `/readyz` answer, on the
    /// client URLs and on --listen-metrics-urls (`uri`: path and query).
    func operationsAnswer(_ uri: String) -> OperationsHTTPServer.Answer {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        let query = parts.count > 1 ? parts[1].split(separator: "&").map(String.init) : []
        let status = node.status
        let (alarm, used) = (try? node.read { store in (store.noSpaceAlarm, try store.usedBytes()) }) ?? (false, 0)
        switch path {
        case "/metrics":
            metrics.hasLeader.set(Double(status.leader == nil ? 0 : 1))
            metrics.isLeader.set(Double(status.role == .leader ? 1 : 0))
            metrics.proposalsCommitted.set(Double(status.commitIndex.rawValue))
            metrics.proposalsApplied.set(Double(status.appliedIndex.rawValue))
            metrics.proposalsPending.set(Double(node.pendingProposals))
            metrics.raftTerm.set(Double(status.term.rawValue))
            metrics.dbTotalSize.set(Double(MaintenanceService.fileBytes(config.dataDirectory + "/db/data.mdb") ?? used))
            metrics.dbInUseSize.set(Double(used))
            return .init(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.exposition())
        case "/health":
            // etcd 3.4's answer, byte for byte: unhealthy on an alarm (unless
            // `?exclude=NOSPACE`) or without a leader; the failure goes out as
            // Go's http.Error writes it.
            let alarmCounts = alarm && !query.contains("exclude=NOSPACE")
            if alarmCounts || status.leader == nil {
                return .init(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: Array(#"{"health":"false"}"#.utf8) + [0x0a])
            }
            return .init(status: .ok, contentType: "text/plain; charset=utf-8", body: Array(#"{"health":"true"}"#.utf8))
        case "/version":
            let body = #"{"etcdserver":"\#(MaintenanceService.serverVersion)","etcdcluster":"\#(MaintenanceService.clusterVersion)"}"#
            return .init(status: .ok, contentType: "application/json", body: Array(body.utf8))
        case "/readyz":
            let ready = status.leader != nil
            return .init(status: ready ? .ok : .serviceUnavailable, contentType: "text/plain", body: Array((ready ? "ok\n" : "no leader\n").utf8))
        default:
            return .init(status: .notFound, contentType: "text/plain", body: Array("404 page not found\n".utf8))
        }
    }

    /// Record this member's name and URLs in the replicated directory, as
    /// etcd's members publish themselves at start: members added later learn
    /// their own name this way, and every member's client URLs reach the
    /// others. Retries until it sticks or the server stops.
    func publish() async {
        var wanted = Etcdserverpb_Member()
        wanted.id = node.id.rawValue
        wanted.name = config.name
        wanted.peerUrls = [config.advertisedPeer.url]
        wanted.clientUrls = config.advertiseClientURLs
        while !Task.isCancelled {
            do {
                // Only once caught up: the directory must reflect the log first.
                try await node.linearizableBarrier()
                // Compare with what the log recorded, not with this member's own view.
                let recorded = try node.read { try $0.members() }.first { $0.id == node.id.rawValue }
                var current = try recorded.map { try Etcdserverpb_Member(serializedBytes: $0.attributes) }
                current?.isLearner = false
                if current == wanted { return }
                var command = Ballotpb_Command()
                command.memberAttributes = wanted
                command.memberAttributes.isLearner = node.status.learners.contains(node.id)
                _ = try await node.propose(command)
                logger.info("recorded this member's attributes in the cluster", metadata: ["name": "\(config.name)"])
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// etcd's auto-compaction: the leader proposes a compaction when the
    /// policy says so; followers only keep sampling, ready to lead.
    func compactAutomatically() async {
        let clock = ContinuousClock()
        let start = clock.now
        func seconds() -> Double {
            let elapsed = start.duration(to: clock.now)
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        var planner = CompactionPlanner(policy: config.autoCompaction, now: seconds())
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64(planner.pollSeconds * 1000)))
            guard let (current, compacted) = try? node.read({ ($0.currentRevision, $0.compactedRevision) }) else { continue }
            guard let target = planner.due(now: seconds(), current: current, compacted: compacted), node.status.role == .leader else { continue }
            var command = Ballotpb_Command()
            command.compaction.revision = target
            do {
                _ = try await node.propose(command)
                logger.info("auto-compacted", metadata: ["revision": "\(target)", "policy": "\(config.autoCompaction)"])
            } catch {
                logger.warning("auto-compaction failed; it is tried again", metadata: ["revision": "\(target)", "error": "\(error)"])
            }
        }
    }

    /// etcd allows this much gRPC framing beyond --max-request-bytes, so the
    /// request reaches the server and fails with etcd's own message.
    static let grpcOverheadBytes = 512 << 10
}
