import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Storage

/// Sends consensus messages to the other members over gRPC: one long-lived
/// client stream per peer, each frame a batch of everything queued,
/// reconnecting with backoff. Also carries the two requests a follower
/// makes of its leader: forwarded proposals and read indexes.
final class PeerTransport: @unchecked Sendable {
    let selfID: NodeID
    let clusterID: UInt64
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
    /// An idle stream sends an empty frame this often.
    static let keepAliveSeconds = 1.0
    static let backoffMaxSeconds = 1.0

    /// Round trips to each peer, measured by a ping every keep-alive period
    /// (etcd's etcd_network_peer_round_trip_time_seconds).
    let roundTrip: @Sendable (Duration) -> Void

    init(selfID: NodeID, clusterID: UInt64, peers: [NodeID: HostPort], logger: Logger,
         roundTrip: @escaping @Sendable (Duration) -> Void = { _ in }) throws {
        self.roundTrip = roundTrip
        self.selfID = selfID
        self.clusterID = clusterID
        self.logger = logger
        (added, addedContinuation) = AsyncStream<PeerLink>.makeStream()
        for (id, address) in peers { try addPeer(id, address: address) }
    }

    /// Start talking to a member (one the log just added); no-op for a
    /// member already known at the same address.
    func addPeer(_ id: NodeID, address: HostPort) throws {
        guard id != selfID else { return }
        let link: PeerLink? = try lock.withLock {
            if let existing = links[id], existing.address == address { return nil }
            let link = try PeerLink(id: id, address: address)
            links[id]?.stop()
            links[id] = link
            return link
        }
        if let link { addedContinuation.yield(link) }
    }

    func removePeer(_ id: NodeID) {
        lock.withLock { links.removeValue(forKey: id) }?.stop()
    }

    private func link(_ id: NodeID) -> PeerLink? { lock.withLock { links[id] } }

    /// Runs every link, present and future, until the task is cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await link in added {
                group.addTask {
                    await link.run(from: self.selfID, clusterID: self.clusterID, logger: self.logger, roundTrip: self.roundTrip) {
                        _ = self.removed.raise()
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Queue messages; never blocks the node loop.
    func send(_ messages: [Consensus.Message]) {
        for message in messages {
            guard let link = link(message.to) else { continue }
            precondition(!isSnapshot(message), "snapshot announcements travel with their bytes (sendSnapshot)")
            link.queue.push(ConsensusCodec.encode(message))
        }
    }

    private func isSnapshot(_ message: Consensus.Message) -> Bool {
        if case .snapshot = message.kind { true } else { false }
    }

    /// Stream a snapshot file to `announce.to` on its own RPC, beside the
    /// message stream: the first chunk carries the announcement, size and
    /// checksum; `progress` hears of every tenth of the way.
    func sendSnapshot(_ info: SnapshotInfo, announcing announce: Consensus.Message,
                      progress: @escaping @Sendable (_ sent: Int, _ total: Int) -> Void) async throws {
        guard let link = link(announce.to) else { throw EtcdError.internal("no address known for member \(announce.to)") }
        let (clusterID, selfID) = (self.clusterID, self.selfID)
        _ = try await link.peer.sendSnapshot(requestProducer: { writer in
            guard let file = FileHandle(forReadingAtPath: info.dataPath) else { throw EtcdError.internal("cannot open \(info.dataPath)") }
            defer { try? file.close() }
            var chunk = Ballotpb_SnapshotChunk()
            chunk.clusterID = clusterID
            chunk.from = selfID.rawValue
            chunk.message = Data(ConsensusCodec.encode(announce))
            chunk.size = UInt64(info.size)
            chunk.checksum = info.checksum
            var sent = 0
            var nextReport = 10
            while sent < info.size {
                let data = try file.read(upToCount: Self.snapshotChunkBytes) ?? Data()
                if data.isEmpty { throw EtcdError.internal("\(info.dataPath) ended at \(sent) of \(info.size) bytes") }
                chunk.data = data
                try await writer.write(chunk)
                chunk = Ballotpb_SnapshotChunk()
                sent += data.count
                if sent * 100 / info.size >= nextReport || sent == info.size {
                    progress(sent, info.size)
                    nextReport = sent * 100 / info.size / 10 * 10 + 10
                }
            }
        })
    }

    /// Bytes per snapshot chunk: large enough to stream at disk speed, small
    /// enough to keep the peer connection's other traffic moving.
    static let snapshotChunkBytes = 1 << 20

    func forward(_ command: Ballotpb_Command, to leader: NodeID, timeout: Double) async throws -> Ballotpb_CommandResult {
        var request = Ballotpb_ForwardRequest()
        request.clusterID = clusterID
        request.command = try command.serializedData()
        return try await ask(leader, timeout) { peer, options in try await peer.forward(request, options: options).result }
    }

    func readIndex(from leader: NodeID, timeout: Double) async throws -> LogIndex {
        var request = Ballotpb_ReadIndexRequest()
        request.clusterID = clusterID
        return try await ask(leader, timeout) { peer, options in LogIndex(try await peer.readIndex(request, options: options).index) }
    }

    func lease(_ request: Ballotpb_LeaseForward, to leader: NodeID, timeout: Double) async throws -> Ballotpb_LeaseForwardResponse {
        var request = request
        request.clusterID = clusterID
        return try await ask(leader, timeout) { [request] peer, options in try await peer.lease(request, options: options) }
    }

    func changeMembership(_ request: Ballotpb_MembershipForward, to leader: NodeID, timeout: Double) async throws -> Ballotpb_MembershipForwardResponse {
        var request = request
        request.clusterID = clusterID
        return try await ask(leader, timeout) { [request] peer, options in try await peer.changeMembership(request, options: options) }
    }

    /// One request to the leader, its failures in etcd's terms: a leader
    /// that cannot be reached is "no leader" (which clients retry); what the
    /// leader refused is refused here the same way.
    private func ask<Response: Sendable>(
        _ leader: NodeID, _ timeout: Double,
        _ call: (Ballotpb_Peer.Client<HTTP2ClientTransport.Posix>, CallOptions) async throws -> Response
    ) async throws -> Response {
        guard let link = link(leader) else { throw EtcdError.noLeader }
        var options = CallOptions.defaults
        options.timeout = .milliseconds(Int64(timeout * 1000))
        do {
            return try await call(link.peer, options)
        } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
            throw EtcdError.noLeader
        } catch let error as RPCError {
            throw EtcdError(code: UInt32(error.code.rawValue), message: error.message)
        }
    }

    func shutdown() {
        addedContinuation.finish()
        for link in lock.withLock({ Array(links.values) }) { link.stop() }
    }
}

/// One peer: its gRPC client, its queue and the task that streams it.
final class PeerLink: Sendable {
    let id: NodeID
    let address: HostPort
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let peer: Ballotpb_Peer.Client<HTTP2ClientTransport.Posix>
    let queue = OutboundQueue()
    private let stopped = WakeFlag()

    /// Close the connection and end `run()`.
    func stop() {
        _ = stopped.raise()
        client.beginGracefulShutdown()
        queue.wake()
    }

    init(id: NodeID, address: HostPort) throws {
        self.id = id
        self.address = address
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: address.host, port: address.port), transportSecurity: .plaintext)
        self.client = GRPCClient(transport: transport)
        self.peer = Ballotpb_Peer.Client(wrapping: client)
    }

    func run(from selfID: NodeID, clusterID: UInt64, logger: Logger, roundTrip: @escaping @Sendable (Duration) -> Void,
             onRemoved: @escaping @Sendable () -> Void) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                do { try await self.client.runConnections() } catch {
                    logger.debug("peer client stopped", metadata: ["peer": "\(self.id)", "error": "\(error)"])
                }
            }
            group.addTask {
                var ping = Ballotpb_PingRequest()
                ping.clusterID = clusterID
                var options = CallOptions.defaults
                options.timeout = .seconds(Int64(PeerTransport.keepAliveSeconds * 5))
                while !Task.isCancelled && !self.stopped.isRaised {
                    try? await Task.sleep(for: .seconds(PeerTransport.keepAliveSeconds))
                    self.queue.wake()
                    let started = ContinuousClock.now
                    if (try? await self.peer.ping(ping, options: options)) != nil { roundTrip(ContinuousClock.now - started) }
                }
            }
            var backoff = PeerTransport.backoffInitialSeconds
            while !Task.isCancelled && !stopped.isRaised {
                // Raised once this stream delivers a frame: a stream that
                // worked and then broke reconnects at once, not after the
                // backoff earlier failures built up.
                let delivered = WakeFlag()
                do {
                    _ = try await peer.send(requestProducer: { writer in
                        while !Task.isCancelled && !self.stopped.isRaised {
                            // Empty when idle for a keep-alive period: the empty
                            // frame lets the peer tell a removed member to stop.
                            let items = await self.queue.drain()
                            if self.stopped.isRaised { return }
                            var batch = Ballotpb_PeerBatch()
                            batch.clusterID = clusterID
                            batch.from = selfID.rawValue
                            batch.messages = items.map { Data($0) }
                            try await writer.write(batch)
                            _ = delivered.raise()
                        }
                    })
                } catch {
                    if Task.isCancelled { break }
                    if let rpc = error as? RPCError, rpc.message == PeerTransport.removedMessage {
                        onRemoved()
                    }
                    if delivered.isRaised {
                        logger.info("peer stream broke; reconnecting", metadata: ["peer": "\(id)", "address": "\(address)", "error": "\(error)"])
                        backoff = PeerTransport.backoffInitialSeconds
                    }
                    try? await Task.sleep(for: .seconds(backoff))
                    backoff = min(PeerTransport.backoffMaxSeconds, backoff * 2)
                }
            }
        }
    }
}
