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
import Synchronization
import X509

/// The receiving side of the peer protocol: accepts members' connections
/// on the peer address, hands their consensus messages to the node,
/// answers their requests and takes in the snapshots they stream.
final class PeerListener: Sendable {
    let node: Node
    let members: MemberDirectory
    let address: HostPort
    /// Bytes received, by the member they came from.
    let traffic: PeerTraffic
    /// Snapshots being received at once, from whichever members.
    let snapshotReceives = InFlightLimit(limit: snapshotReceivesMax)
    /// Only a leader sends snapshots, one per member at a time; two allow a
    /// new leader's transfer to start while a deposed one's winds down.
    static let snapshotReceivesMax = 2

    /// The peer server's TLS, for an `https` address, and `--peer-crl-file`'s
    /// list of certificates whose connections are closed after their
    /// handshake; as they are when a connection comes (`TLSSource`).
    let tls: TLSSource?
    /// What a connecting peer's certificate must also meet (`--peer-cert-allowed-*`).
    let certificateRule: PeerCertificateRule?
    /// `--peer-secret-file`: what every dialler must prove it holds.
    let secret: PeerSecret?
    /// Refusals are all counted, but logged within this budget.
    private let refusalLogBudget = LogBudget()

    init(node: Node, members: MemberDirectory, address: HostPort, tls: TLSSource?, certificateRule: PeerCertificateRule? = nil,
         secret: PeerSecret? = nil, traffic: PeerTraffic = PeerTraffic()) {
        self.secret = secret
        precondition(!address.secure || tls != nil, "an https peer URL needs a TLS context (ServerConfig.validated checks)")
        self.tls = tls
        self.certificateRule = certificateRule
        self.node = node
        self.members = members
        self.address = address
        self.traffic = traffic
    }

    private var logger: Logger { node.logger }

    /// Requests one connection may have waiting for answers; more are
    /// refused with etcd's "too many requests" rather than queued.
    static let requestsInFlightMax = 4_096

    /// Serve until the task is cancelled.
    func run() async throws {
        let tls = address.secure ? tls : nil
        let (rule, logger) = (certificateRule, logger)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<PeerFrame.Connection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                guard let tls = tls?.current() else { return }
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server))
                if let revocations = tls.revocations { try channel.pipeline.syncOperations.addHandler(CertificateRevocationGate(list: revocations)) }
                if let rule { try channel.pipeline.syncOperations.addHandler(PeerCertificateGate(rule: rule, side: .listener, logger: logger)) }
            }.flatMap { PeerFrame.wrapAccepted(channel, tap: self.messageTap()) }
        }
        // Connections on the node's event loop: their frames are stepped
        // where they are read (`PeerMessageTap`), with no thread hand-off.
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton, childGroup: node.loop)
        let server = address.unixSocket
            ? try await bootstrap.bind(unixDomainSocketPath: address.host, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            : try await bootstrap
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: address.host, port: address.port, childChannelInitializer: initializer)
        try await withTaskCancellationHandler {
            try await server.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            group.addTask { await self.serve(connection) }
                        }
                    } catch {
                        self.logger.debug("the peer listener stopped", metadata: ["error": "\(error)"])
                    }
                    group.cancelAll()
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// One member's connection, from its hello to its close. Whatever goes
    /// wrong closes only this connection; the dialler redials.
    private func serve(_ connection: PeerFrame.Connection) async {
        let remote = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        do {
            try await withTaskCancellationHandler {
                try await connection.executeThenClose { inbound, outbound in
                    var frames = inbound.makeAsyncIterator()
                    // A hello arrives here only once its proof checked out
                    // (`PeerMessageTap`); a refused dialler's connection
                    // closes with nothing read.
                    guard let first = try await frames.next() else { return }
                    if case .discover(let version, let peerURL) = first {
                        try await outbound.write(discoveryAnswer(version: version, peerURL: peerURL))
                        return
                    }
                    if case .refused(_, let message) = first {
                        // The dialler's rule refused this member's certificate
                        // (`PeerCertificateGate`): etcd logs the alert it got.
                        logger.warning("a peer refused this member's certificate", metadata: ["remote": "\(remote)", "error": "\(message)"])
                        return
                    }
                    guard case .hello(_, _, let from, _, _, _) = first else {
                        try await outbound.write(.refused(.noHello, message: "ballot: a peer connection must start with a hello"))
                        return
                    }
                    let requests = InFlightLimit(limit: Self.requestsInFlightMax)
                    // Resolved at the first bytes: etcd shows a peer's counter only once it moved.
                    var received: (@Sendable (Int) -> Void)?
                    try await withThrowingDiscardingTaskGroup { group in
                        while let frame = try await frames.next() {
                            // Checked on every frame, the dialler's pings
                            // included: a removed member may hear of its
                            // removal only this way, since the leader stops
                            // replicating to it.
                            if members.wasRemoved(from) {
                                // Answers still owed go out first (the removed
                                // member forwarded its own removal); its other
                                // frames are dropped meanwhile.
                                if requests.current > 0 { continue }
                                try await outbound.write(.refused(.removed, message: PeerTransport.removedMessage))
                                return
                            }
                            switch frame {
                            case .messages(let encoded):
                                if received == nil { received = traffic.receivedFrom(from) }
                                received!(PeerTraffic.frameBytes(encoded))
                                receive(encoded, from: from)
                            case .request(let id, let kind, let payload):
                                guard requests.enter() else {
                                    try await outbound.write(.failure(id, .tooManyRequests))
                                    continue
                                }
                                group.addTask {
                                    defer { requests.leave() }
                                    try await outbound.write(await self.answer(id, kind, payload))
                                }
                            case .snapshotStart(let announce, let size, let checksum):
                                guard snapshotReceives.enter() else {
                                    try await outbound.write(.failure(0, .tooManyRequests))
                                    return
                                }
                                defer { snapshotReceives.leave() }
                                let answer = await receiveSnapshot(announce, size: size, checksum: checksum, from: from, frames: &frames)
                                try await outbound.write(answer)
                                return
                            case .hello, .refused, .response, .snapshotData, .discover, .discovered, .challenge, .proof:
                                throw PeerProtocolError.unexpected(frame)
                            }
                        }
                    }
                }
            } onCancel: {
                connection.channel.close(promise: nil)
            }
        } catch {
            if !Task.isCancelled {
                logger.warning("closed a peer connection", metadata: ["remote": "\(remote)", "error": "\(error)"])
            }
        }
    }

    /// The handshake runs on the event loop (`admit`); then consensus
    /// messages go to the node from there; a removed member's frames go on
    /// to `serve`, which refuses it.
    private func messageTap() -> PeerMessageTap {
        PeerMessageTap(
            admit: { [self] frame, remote, certificate in admit(frame, remote: remote, certificate: certificate) },
            deliver: { [self] encoded, from in
                guard !members.wasRemoved(from) else { return false }
                receive(encoded, from: from)
                return true
            },
            counter: traffic.receivedFrom,
            answer: { [self, requests = InFlightLimit(limit: Self.requestsInFlightMax)] id, kind, payload, from, reply in
                answerHere(id, kind, payload, from: from, requests: requests, reply: reply)
            })
    }

    /// Forwarded proposals, answered by callback from the thread that
    /// settles them (the apply thread), with no task in between: a
    /// follower's forwarded write waits on this. False for every other
    /// request, and for any from a member removed since, which the reader
    /// serves or refuses. (A follower's read index travels as a consensus
    /// message, `Message.Kind.readIndex`.)
    private func answerHere(_ id: UInt64, _ kind: PeerRequestKind, _ payload: [UInt8], from: NodeID, requests: InFlightLimit,
                            reply: @escaping @Sendable (PeerFrame) -> Void) -> Bool {
        guard kind == .forward, !members.wasRemoved(from) else { return false }
        guard requests.enter() else {
            reply(.failure(id, .tooManyRequests))
            return true
        }
        let done: @Sendable (PeerFrame) -> Void = { frame in
            requests.leave()
            reply(frame)
        }
        let command: Ballotpb_Command
        do {
            command = try Ballotpb_Command(serializedBytes: payload)
        } catch {
            done(.failure(id, .invalid("ballot: a peer request this member cannot read: \(error)")))
            return true
        }
        let proposed = node.forwardedHere(command) { result in
            // etcd's refusals travel inside the result, as the reader's answers carry them.
            let answer = result.flatMapError { error -> Result<Ballotpb_CommandResult, any Error> in
                guard let error = error as? EtcdError else { return .failure(error) }
                var refused = Ballotpb_CommandResult()
                refused.errorCode = UInt32(error.code.rawValue)
                refused.errorMessage = error.description
                return .success(refused)
            }
            done(Self.frame(id, answer.flatMap { result in Result { try result.serializedBytes() } }))
        }
        if !proposed { done(.failure(id, .noLeader)) }
        return true
    }

    /// The response frame for an answer, or for the failure to find one.
    private static func frame(_ id: UInt64, _ answer: Result<[UInt8], any Error>) -> PeerFrame {
        switch answer {
        case .success(let bytes):
            // An answer no frame can carry (a huge transaction's reads, say)
            // is refused here, not sent to fail in the encoder.
            guard bytes.count <= PeerFrame.bytesMax - responseOverheadBytes else {
                return .failure(id, .invalid("ballot: the answer of \(bytes.count) bytes is larger than a member may pass on; send the request to the leader, or read less at once"))
            }
            return .response(id: id, code: 0, message: "", payload: bytes)
        case .failure(let error as EtcdError):
            return .failure(id, error)
        case .failure(let error):
            return .failure(id, .invalid("ballot: a peer request this member cannot read: \(error)"))
        }
    }

    /// What a joining member learns (`ClusterDiscovery`): told only once it
    /// was added, found by its peer URL among the members of the
    /// configuration in force, so a removed member's entry never answers.
    private func discoveryAnswer(version: UInt16, peerURL: String) -> PeerFrame {
        if version != PeerFrame.protocolVersion {
            return .refused(.wrongVersion, message: "ballot: peer protocol version \(version), this member speaks \(PeerFrame.protocolVersion)")
        }
        let status = node.status
        let current = status.voters.union(status.learners).sorted().compactMap { id in
            members.member(id)?.peerUrls.first.map { PeerFrame.DiscoveredMember(id: id, peerURL: $0) }
        }
        guard let asker = current.first(where: { $0.peerURL == peerURL }) else {
            return .refused(.wrongCluster, message: "ballot: no member of this cluster has peer URL \(peerURL); add it first (etcdctl member add)")
        }
        return .discovered(clusterID: node.clusterID, memberID: asker.id, members: current)
    }

    /// The listener's side of the handshake (`PeerHandshake`) for a
    /// connection's first frame: nil if it is no hello (`serve` deals with
    /// it), else the refusal or the challenge, with the check of the
    /// dialler's proof. Every refusal is logged with the address it came from.
    private func admit(_ frame: PeerFrame, remote: String, certificate: NIOSSLCertificate?) -> PeerAdmission? {
        guard case .hello(let version, let clusterID, let from, let to, let diallerNonce, let engine) = frame else { return nil }
        let refused: @Sendable (PeerRefusal, String) -> PeerFrame = { [logger, traffic, refusalLogBudget] reason, message in
            traffic.refused(reason)
            let (logs, unlogged) = refusalLogBudget.spend()
            if logs {
                var metadata: Logger.Metadata = [
                    "remote": "\(remote)", "claimed-member": "\(String(from.rawValue, radix: 16))", "reason": "\(message)",
                ]
                if unlogged > 0 { metadata["unlogged-before"] = "\(unlogged)" }
                logger.warning("refused a peer connection", metadata: metadata)
            }
            return .refused(reason, message: message)
        }
        if let (reason, message) = refusal(version: version, clusterID: clusterID, from: from, to: to, nonce: diallerNonce, engine: engine)
            ?? certificateRefusal(certificate, from: from) {
            return .refuse(refused(reason, message))
        }
        let listenerNonce = PeerHandshake.nonce()
        let proof = secret?.proof(.listener, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce) ?? []
        return .challenge(.challenge(nonce: listenerNonce, proof: proof), from: from) { [secret] diallerProof in
            guard let secret else { return nil }
            if secret.verify(diallerProof, .dialler, clusterID: clusterID, from: from, to: to, diallerNonce: diallerNonce, listenerNonce: listenerNonce) {
                return nil
            }
            return refused(.unproven, "ballot: the dialler did not prove it holds this cluster's peer secret as member \(String(from.rawValue, radix: 16)) (check --peer-secret-file)")
        }
    }

    /// Why this member will not talk to a dialler, if it will not, before
    /// any proof. Without a peer secret, only the members this one knows
    /// are admitted (an ID is all a dialler shows). With one, a dialler
    /// proving it holds the secret is a member even under an ID not known
    /// here yet: one added while this member lags in applying the log, and
    /// perhaps its leader, whose appends are how this member learns of it.
    private func refusal(version: UInt16, clusterID: UInt64, from: NodeID, to: NodeID, nonce: [UInt8], engine: UInt8) -> (PeerRefusal, String)? {
        if version != PeerFrame.protocolVersion {
            return (.wrongVersion, "ballot: peer protocol version \(version), this member speaks \(PeerFrame.protocolVersion)")
        }
        if clusterID != node.clusterID {
            return (.wrongCluster, "ballot: member \(String(from.rawValue, radix: 16)) is in cluster \(String(clusterID, radix: 16)), this member is in cluster \(String(node.clusterID, radix: 16)): check --initial-cluster-token")
        }
        if engine != node.engine.wireCode {
            let theirs = EngineKind(wireCode: engine).map(\.rawValue) ?? "an unknown engine (code \(engine))"
            return (.wrongEngine, "ballot: member \(String(from.rawValue, radix: 16)) runs the \(theirs) engine, this member runs \(node.engine): every member of a cluster runs the same --engine")
        }
        if members.wasRemoved(from) { return (.removed, PeerTransport.removedMessage) }
        if to != node.id {
            return (.notMember, "ballot: this is member \(String(node.id.rawValue, radix: 16)), not member \(String(to.rawValue, radix: 16))")
        }
        if nonce.count != PeerHandshake.nonceBytes {
            return (.unproven, "ballot: a hello's nonce has \(PeerHandshake.nonceBytes) bytes, this one \(nonce.count)")
        }
        if from == node.id { return (.notMember, "ballot: a member does not dial itself") }
        if secret == nil && members.member(from) == nil {
            return (.notMember, "ballot: \(String(from.rawValue, radix: 16)) is not a member of this cluster as this member knows it")
        }
        return nil
    }

    /// Under peer TLS with a CA, the member ID a dialler claims is bound to
    /// its certificate: it must name (as an IP address or DNS name, Go's
    /// `VerifyHostname`) the host of that member's peer URL, as the
    /// certificate the member serves there must for anyone to dial it. So
    /// a member's certificate cannot speak for a member on another host.
    /// (Members sharing a host share this check; the peer secret tells
    /// them apart.) A member this one does not know yet has no URL to check.
    private func certificateRefusal(_ certificate: NIOSSLCertificate?, from: NodeID) -> (PeerRefusal, String)? {
        guard let tls = tls?.current(), tls.verifiesOtherSide, let certificate,
              let urls = members.member(from)?.peerUrls, !urls.isEmpty,
              let parsed = try? Certificate(derEncoded: certificate.toDERBytes()) else { return nil }
        let hosts = urls.compactMap { try? HostPort(url: $0) }.filter { !$0.unixSocket }.map(\.host)
        guard !hosts.isEmpty, !hosts.contains(where: { PeerCertificateRule.isValid(parsed, forHost: $0) }) else { return nil }
        return (.badCertificate, "ballot: the certificate presented for member \(String(from.rawValue, radix: 16)) names none of its peer URLs' hosts (\(hosts.joined(separator: ", ")))")
    }

    private func receive(_ encoded: [[UInt8]], from: NodeID) {
        var messages: [Consensus.Message] = []
        messages.reserveCapacity(encoded.count)
        for bytes in encoded {
            // A message this code did not write is dropped, not trusted.
            guard let message = ConsensusCodec.decodeMessage(bytes), message.from == from, message.to == node.id else {
                logger.warning("dropping an undecodable peer message", metadata: ["from": "\(from)"])
                continue
            }
            messages.append(message)
        }
        if !messages.isEmpty { node.receive(messages) }
    }

    /// Serve one request; every failure becomes an answer with etcd's code
    /// and message.
    private func answer(_ id: UInt64, _ kind: PeerRequestKind, _ payload: [UInt8]) async -> PeerFrame {
        let answer: Result<[UInt8], any Error>
        do {
            if kind != .ping, node.status.role != .leader { throw EtcdError.noLeader }
            switch kind {
            case .ping:
                answer = .success([])
            case .forward:
                // The tap answers these on the event loop (`answerHere`) for
                // every member not removed, and a removed one is refused
                // before its requests get here.
                throw EtcdError.noLeader
            case .lease:
                let request = try Ballotpb_LeaseForward(serializedBytes: payload)
                var response = Ballotpb_LeaseForwardResponse()
                switch request.request {
                case .keepAlive(let keepAlive): response.keepAlive = try await node.keepAlive(keepAlive)
                case .timeToLive(let timeToLive): response.timeToLive = try await node.timeToLive(timeToLive)
                case nil: throw EtcdError.invalid("ballot: an empty lease request")
                }
                answer = .success(try response.serializedBytes())
            case .membership:
                var response = Ballotpb_MembershipForwardResponse()
                response.member = try await node.changeMembership(try Ballotpb_MembershipForward(serializedBytes: payload))
                answer = .success(try response.serializedBytes())
            }
        } catch {
            answer = .failure(error)
        }
        return Self.frame(id, answer)
    }

    /// Room a response frame needs besides its answer.
    static let responseOverheadBytes = 1 << 10

    /// The largest snapshot accepted: twice the quota (etcd's
    /// --quota-backend-bytes). A leader's store stops taking writes at the
    /// quota, and a snapshot is a compacted copy of it, so one bigger than
    /// this was not made by a member of this cluster.
    static func snapshotBytesMax(quotaBytes: Int) -> UInt64 {
        UInt64(clamping: quotaBytes) * 2
    }

    /// A snapshot from the leader, written in full and verified against its
    /// announced size and checksum before the core hears of it, so the core
    /// only ever accepts a snapshot whose bytes are already durable here.
    /// Answers with success or the reason it was refused.
    private func receiveSnapshot(
        _ announceBytes: [UInt8], size: UInt64, checksum: UInt32, from: NodeID,
        frames: inout NIOAsyncChannelInboundStream<PeerFrame>.AsyncIterator
    ) async -> PeerFrame {
        var receiver: SnapshotReceiver?
        do {
            guard let announce = ConsensusCodec.decodeMessage(announceBytes), announce.from == from,
                announce.to == node.id, case .snapshot(let metadata) = announce.kind
            else {
                throw EtcdError.invalid("ballot: a snapshot transfer must start with its announcement, addressed to this member")
            }
            // A snapshot replaces the whole store: only the leader this
            // member follows sends one (after an append of its showed this
            // member behind), and no bigger than a store at its quota.
            guard node.status.leader == from else {
                throw EtcdError.invalid("ballot: a snapshot is taken only from the leader this member follows")
            }
            guard size <= Self.snapshotBytesMax(quotaBytes: node.quotaBytes) else {
                throw EtcdError.invalid("ballot: a snapshot of \(size) bytes is larger than a store within its quota of \(node.quotaBytes) bytes")
            }
            receiver = try node.snapshots.receiver(for: metadata, size: Int(clamping: size), checksum: checksum)
            logger.info("receiving a snapshot", metadata: ["from": "\(from)", "index": "\(metadata.index)", "bytes": "\(size)"])
            var tenths = ProgressTenths(total: receiver!.size)
            while receiver!.written < receiver!.size {
                guard let frame = try await frames.next() else { throw PeerProtocolError.connectionClosed }
                guard case .snapshotData(let bytes) = frame else { throw PeerProtocolError.unexpected(frame) }
                try receiver!.append(bytes)
                if let percent = tenths.advance(to: receiver!.written) {
                    logger.info("snapshot receive progress", metadata: [
                        "received": "\(receiver!.written)", "total": "\(receiver!.size)", "percent": "\(percent)",
                    ])
                }
            }
            let finished = receiver!
            let info = try await Node.onThread("ballot-snapshot") { try finished.finish() }
            receiver = nil
            logger.info("received a snapshot", metadata: ["index": "\(info.metadata.index)", "bytes": "\(info.size)"])
            node.receive([announce])
            return .response(id: 0, code: 0, message: "", payload: [])
        } catch {
            receiver?.abandon()
            logger.warning("refused a snapshot", metadata: ["from": "\(from)", "error": "\(error)"])
            return .failure(0, error as? EtcdError ?? .internal("\(error)"))
        }
    }
}

extension PeerFrame {
    /// The answer to request `id` (0: a snapshot transfer) that failed with
    /// `error`: etcd's code and message, which the asking member rethrows.
    static func failure(_ id: UInt64, _ error: EtcdError) -> PeerFrame {
        .response(id: id, code: UInt32(error.code.rawValue), message: error.description, payload: [])
    }
}

/// Things under way (requests on a connection, snapshots arriving), up to a limit.
final class InFlightLimit: Sendable {
    private let count = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
    }

    /// Count one more, unless the limit is reached.
    func enter() -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }

    /// How many are in now.
    var current: Int { count.load(ordering: .relaxed) }
}
