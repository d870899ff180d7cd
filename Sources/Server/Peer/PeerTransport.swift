import Engines
import Consensus
import EtcdAPI
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import StateMachine
import Storage

/// Sends consensus messages to the other members in length-prefixed frames
/// over TCP (`PeerFrame`): one connection per peer, each frame a batch of
/// everything queued, redialled with backoff. Also carries the requests a
/// follower makes of its leader (forwarded proposals, read indexes, lease
/// and membership requests) with their answers, and streams snapshots on
/// connections of their own.
final class PeerTransport: @unchecked Sendable {
    let selfID: NodeID
    let clusterID: UInt64
    /// The consensus engine this member runs: its hellos say so, and a listener running the other refuses them.
    let engine: EngineKind
    let logger: Logger
    private let lock = NSLock()
    private var links: [NodeID: PeerLink] = [:]
    /// Links added while running, for `run()` to start.
    private let added: AsyncStream<PeerLink>
    private let addedContinuation: AsyncStream<PeerLink>.Continuation

    /// What members answer a removed member, so that it stops (etcd's
    /// peers answer 410 Gone for the same purpose).
    static let removedMessage = "ballot: this member was removed from the cluster"
    /// Set once a peer said this member was removed.
    let removed = WakeFlag()

    static let backoffInitialSeconds = 0.05
    static let backoffMaxSeconds = 1.0
    /// Each connection is pinged this often; five periods without an answer
    /// and it is redialled.
    static let keepAliveSeconds = 1.0
    /// A dial that has not connected by then has failed.
    static let connectTimeoutSeconds: Int64 = 1

    /// Round trips (a ping every keep-alive period) and bytes sent.
    let traffic: PeerTraffic
    /// How this member dials a peer whose URL is `https`: presenting its
    /// peer certificate, and checking the peer's unless it is auto-TLS;
    /// asked at every dial, so rotated certificates are used (`TLSSource`).
    let tls: @Sendable () -> NIOSSLContext
    /// What a peer's server certificate must also meet (`--peer-cert-allowed-*`).
    let certificateRule: PeerCertificateRule?
    /// With which this member proves itself to peers, and they to it.
    let secret: PeerSecret?
    /// The event loop the links' connections live on: the node's, so that
    /// what the node sends is written without a thread hand-off.
    let loop: any EventLoop

    init(selfID: NodeID, clusterID: UInt64, engine: EngineKind = .raft, peers: [NodeID: HostPort], tls: @escaping @Sendable () -> NIOSSLContext, certificateRule: PeerCertificateRule? = nil,
         secret: PeerSecret? = nil, logger: Logger, traffic: PeerTraffic = PeerTraffic(),
         loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.secret = secret
        self.traffic = traffic
        self.loop = loop
        self.tls = tls
        self.certificateRule = certificateRule
        self.selfID = selfID
        self.clusterID = clusterID
        self.engine = engine
        self.logger = logger
        (added, addedContinuation) = AsyncStream<PeerLink>.makeStream()
        for (id, address) in peers { addPeer(id, address: address) }
    }

    /// A fresh hello for a connection to `peer`.
    private func hello(to peer: NodeID) -> PeerFrame {
        PeerHandshake.hello(clusterID: clusterID, from: selfID, to: peer, engine: engine)
    }

    /// Start talking to a member (one the log just added); no-op for a
    /// member already known at the same address.
    func addPeer(_ id: NodeID, address: HostPort) {
        guard id != selfID else { return }
        let link: PeerLink? = lock.withLock {
            if let existing = links[id], existing.address == address { return nil }
            let link = PeerLink(id: id, address: address)
            links[id]?.stop()
            links[id] = link
            return link
        }
        if let link { addedContinuation.yield(link) }
    }

    /// No new requests go to a removed member; those it owes answers get
    /// a moment (`removedAnswerGraceSeconds`) before its link closes.
    func removePeer(_ id: NodeID) {
        lock.withLock { links.removeValue(forKey: id) }?.stop(afterAnswers: .milliseconds(Int64(Self.removedAnswerGraceSeconds * 1000)))
    }

    static let removedAnswerGraceSeconds = 2.0

    private func link(_ id: NodeID) -> PeerLink? { lock.withLock { links[id] } }

    /// Runs every link, present and future, until the task is cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await link in added {
                group.addTask {
                    await link.run(hello: { self.hello(to: link.id) }, secret: self.secret, logger: self.logger, traffic: self.traffic, dial: self.dial) {
                        _ = self.removed.raise()
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// A connection to `address`, in TLS if its URL is `https`.
    @Sendable func dial(_ address: HostPort) async throws -> PeerFrame.Connection {
        try await Self.dial(address, tls: tls(), rule: certificateRule, logger: logger, on: loop)
    }

    /// A connection to `address` on `loop` (the node's, for its links);
    /// under TLS, refused (`PeerCertificateRefused`) unless the peer's
    /// certificate meets `rule`.
    static func dial(_ address: HostPort, tls context: NIOSSLContext, rule: PeerCertificateRule?, logger: Logger,
                     on loop: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> PeerFrame.Connection {
        let tls = address.secure ? context : nil
        let initializer: @Sendable (any Channel) -> EventLoopFuture<PeerFrame.Connection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                guard let tls else { return }
                // A name is checked against the certificate (and sent
                // as SNI); an address is checked against the IP the
                // connection reached.
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: address.serverHostname))
                if let rule { try channel.pipeline.syncOperations.addHandler(PeerCertificateGate(rule: rule, side: .dialler, logger: logger)) }
            }.flatMap { PeerFrame.wrapDialled(channel) }
        }
        let bootstrap = ClientBootstrap(group: loop).connectTimeout(.seconds(connectTimeoutSeconds))
        if address.unixSocket {
            return try await bootstrap.connect(unixDomainSocketPath: address.host, channelInitializer: initializer)
        }
        return try await bootstrap
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: address.host, port: address.port, channelInitializer: initializer)
    }

    /// Queue messages for their peers; on the node's event loop, written at
    /// once (`PeerLink.send`). Never blocks.
    func send(_ messages: [Consensus.Message]) {
        // One write per peer for what goes to it, in order.
        var byPeer: [NodeID: [[UInt8]]] = [:]
        for message in messages {
            precondition(!isSnapshot(message), "snapshot announcements travel with their bytes (sendSnapshot)")
            byPeer[message.to, default: []].append(ConsensusCodec.encode(message))
        }
        for (peer, encoded) in byPeer { link(peer)?.send(encoded) }
    }

    private func isSnapshot(_ message: Consensus.Message) -> Bool {
        if case .snapshot = message.kind { true } else { false }
    }

    /// Stream a snapshot file to `announce.to` on a connection of its own,
    /// beside the messages: the announcement with size and checksum first,
    /// then the bytes; the receiver answers once they are durable. `progress`
    /// hears of every tenth of the way.
    func sendSnapshot(_ info: SnapshotInfo, announcing announce: Consensus.Message,
                      progress: @escaping @Sendable (_ sent: Int, _ total: Int) -> Void) async throws {
        guard let link = link(announce.to) else { throw EtcdError.internal("no address known for member \(announce.to)") }
        let connection = try await dial(link.address)
        // A receiver that stalls must not hold the member's one transfer forever.
        let deadline = Task { [channel = connection.channel] in
            try await Task.sleep(for: .seconds(Self.snapshotSecondsMin + info.size / Self.snapshotBytesPerSecondMin))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        try await connection.executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            try await PeerHandshake.dial(hello(to: announce.to), secret: secret, on: connection.channel, frames: &frames, outbound: outbound)
            try await outbound.write(.snapshotStart(announce: ConsensusCodec.encode(announce), size: UInt64(info.size), checksum: info.checksum))
            guard let file = FileHandle(forReadingAtPath: info.dataPath) else { throw EtcdError.internal("cannot open \(info.dataPath)") }
            defer { try? file.close() }
            var sent = 0
            var tenths = ProgressTenths(total: info.size)
            while sent < info.size {
                let data = try file.read(upToCount: Self.snapshotChunkBytes) ?? Data()
                if data.isEmpty { throw EtcdError.internal("\(info.dataPath) ended at \(sent) of \(info.size) bytes") }
                try await outbound.write(.snapshotData([UInt8](data)))
                sent += data.count
                if tenths.advance(to: sent) != nil { progress(sent, info.size) }
            }
            while let frame = try await frames.next() {
                switch frame {
                case .response(_, let code, let message, _):
                    if code == 0 { return }
                    throw EtcdError(code: code, message: message)
                case .refused(let reason, let message):
                    throw PeerRefused(reason: reason, message: message)
                default:
                    throw PeerProtocolError.unexpected(frame)
                }
            }
            throw PeerProtocolError.connectionClosed
        }
    }

    /// Bytes per snapshot chunk: large enough to stream at disk speed, small
    /// enough to keep the peer connection's other traffic moving.
    static let snapshotChunkBytes = 1 << 20
    /// A snapshot transfer gets this long, plus a second for every
    /// `snapshotBytesPerSecondMin` bytes, before it is abandoned (and retried).
    static let snapshotSecondsMin = 60
    static let snapshotBytesPerSecondMin = 1 << 20

    func forward(_ command: Ballotpb_Command, to leader: NodeID, timeout: Double) async throws -> Ballotpb_CommandResult {
        try Ballotpb_CommandResult(serializedBytes: try await ask(leader, .forward, try command.serializedBytes(), timeout))
    }

    func lease(_ request: Ballotpb_LeaseForward, to leader: NodeID, timeout: Double) async throws -> Ballotpb_LeaseForwardResponse {
        try Ballotpb_LeaseForwardResponse(serializedBytes: try await ask(leader, .lease, try request.serializedBytes(), timeout))
    }

    func changeMembership(_ request: Ballotpb_MembershipForward, to leader: NodeID, timeout: Double) async throws -> Ballotpb_MembershipForwardResponse {
        try Ballotpb_MembershipForwardResponse(serializedBytes: try await ask(leader, .membership, try request.serializedBytes(), timeout))
    }

    /// One request to the leader, its failures in etcd's terms (the
    /// README's error contract): a request that never reached the leader is
    /// "no leader", since nothing was proposed; one that went out but got
    /// no answer is etcd's ambiguous "request timed out", since the leader
    /// may have applied it; what the leader refused is refused the same way.
    private func ask(_ leader: NodeID, _ kind: PeerRequestKind, _ payload: [UInt8], _ timeout: Double) async throws -> [UInt8] {
        guard let link = link(leader) else { throw EtcdError.noLeader }
        do {
            return try await link.ask(kind, payload, timeout: timeout)
        } catch {
            throw Self.etcdError(error)
        }
    }

    /// A request's failure in etcd's terms (see `ask`).
    private static func etcdError(_ error: any Error) -> any Error {
        switch error {
        case let error as EtcdError: error
        case is CancellationError: error
        case PeerProtocolError.notSent: EtcdError.noLeader
        // Anything else may have been served: ambiguous, as etcd's timeout is.
        default: EtcdError.timeout
        }
    }

    func shutdown() {
        addedContinuation.finish()
        for link in lock.withLock({ Array(links.values) }) { link.stop() }
    }
}
