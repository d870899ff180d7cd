import Engines
import Consensus
import EtcdAPI
import Foundation
import NIOCore
import NIOPosix
import Storage
@testable import Server
import Testing

/// A process on the peer port that is not a member: with a forged member
/// ID, with a removed member's ID (even holding the secret, as one taken
/// from that member's disk would), and with a member's ID but no proof. It
/// sends what would hurt most: higher-term appends and votes, a forwarded
/// removal of the leader, a forwarded write, a snapshot. A cluster with a
/// peer secret refuses every connection, logs each refusal, and nothing
/// changes: not the data (HashKV), not the leader, not the term, not the
/// members. The same attack on a cluster without a secret, claiming a
/// member's ID, does depose its leader: the secret is what stops it.
@Suite(.serialized) struct PeerAttackTests {
    /// What an attacker sends after its hello: every frame that, believed,
    /// would change the cluster.
    static func payload(clusterID: UInt64, from: NodeID, to: NodeID, leader: NodeID, term: Term) throws -> [PeerFrame] {
        let high = Term(term.rawValue + 100)
        let messages: [Consensus.Message] = [
            Message(from: from, to: to, term: high, kind: .append(prevIndex: .zero, prevTerm: .zero, entries: [], commit: LogIndex(1_000_000))),
            Message(from: from, to: to, term: high, kind: .vote(lastIndex: LogIndex(1_000_000), lastTerm: high, transfer: true)),
            Message(from: from, to: to, term: high, kind: .appendResponse(reject: false, index: LogIndex(1_000_000), hintIndex: .zero, hintTerm: .zero)),
            Message(from: from, to: to, term: high, kind: .heartbeatResponse(round: 1)),
            // The same attack in Multi-Paxos's words (each engine ignores the other's kinds).
            Message(from: from, to: to, term: high, kind: .prepare(firstSlot: LogIndex(1), handoverRound: .zero)),
            Message(from: from, to: to, term: high, kind: .accept(entries: [], commit: LogIndex(1_000_000))),
            Message(from: from, to: to, term: high, kind: .accepted(first: 1, last: .zero, through: LogIndex(1_000_000), commit: LogIndex(1_000_000))),
        ]
        var removal = Ballotpb_MembershipForward()
        removal.remove = .with { $0.id = leader.rawValue }
        var put = Ballotpb_Command()
        put.put = .with {
            $0.key = Data("owned".utf8)
            $0.value = Data("by the attacker".utf8)
        }
        let announce = Message(from: from, to: to, term: high, kind: .snapshot(
            SnapshotMetadata(index: LogIndex(1_000_000), term: high, membership: Membership(voters: [from, to]))))
        return [
            .messages(messages.map { ConsensusCodec.encode($0) }),
            .request(id: 1, kind: .membership, payload: try removal.serializedBytes()),
            .request(id: 2, kind: .forward, payload: try put.serializedBytes()),
            .snapshotStart(announce: ConsensusCodec.encode(announce), size: 4096, checksum: 0),
        ]
    }

    /// Each member's ID, the leader they name and their raft terms.
    static func status(_ cluster: TestCluster) throws -> (ids: [NodeID], leaders: Set<UInt64>, terms: [UInt64]) {
        let out = try cluster.etcdctl("endpoint", "status", "-w", "json")
        let fields = (try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]] ?? []).map { $0["Status"] as? [String: Any] }
        let ids = fields.compactMap { (($0?["header"] as? [String: Any])?["member_id"] as? NSNumber)?.uint64Value }.map { NodeID($0) }
        let leaders = Set(fields.compactMap { ($0?["leader"] as? NSNumber)?.uint64Value })
        let terms = fields.compactMap { (($0?["header"] as? [String: Any])?["raft_term"] as? NSNumber)?.uint64Value }
        try #require(ids.count == cluster.members.count && terms.count == ids.count, "\(out.stdout)")
        return (ids, leaders, terms)
    }

    static func clusterID(_ cluster: TestCluster) throws -> UInt64 {
        let log = (try? String(contentsOfFile: cluster.members[0].log, encoding: .utf8)) ?? ""
        let hex = try #require(PeerProtocolTests.match("cluster=[0-9a-f]+", in: log), "\(log)")
        return try #require(UInt64(hex, radix: 16))
    }

    @Test func strangersOnThePeerPortChangeNothing() async throws {
        let secretPath = NSTemporaryDirectory() + "ballot-peer-secret-" + UUID().uuidString
        let secretBytes = (0..<32).map { _ in UInt8.random(in: .min ... .max) }
        try Data(secretBytes).write(to: URL(fileURLWithPath: secretPath))
        defer { try? FileManager.default.removeItem(atPath: secretPath) }
        let secret = try PeerSecret(bytes: secretBytes)
        // Slower elections than the tests' default: a leader change from a
        // busy machine would look like one the attack caused.
        let cluster = try TestCluster(extraArguments: ["--peer-secret-file", secretPath, "--heartbeat-interval", "100", "--election-timeout", "3000"])
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "truth", "1")

        // A member added and removed: its ID is known, and refused.
        let added = try cluster.etcdctl("member", "add", "gone", "--learner", "--peer-urls=http://127.0.0.1:\(try TestCluster.freePorts(1)[0])")
        // etcdctl prints the ID with `%16x`: space-padded when it has fewer
        // than 16 hex digits.
        let addedLine = try #require(added.stdout.range(of: "Member +[0-9a-f]+ added", options: .regularExpression).map { added.stdout[$0] },
                                     "\(added.stdout)")
        let removedID = try #require(UInt64(addedLine.split(separator: " ", omittingEmptySubsequences: true)[1], radix: 16))
        try cluster.etcdctl("member", "remove", String(removedID, radix: 16))
        let removed = NodeID(removedID)

        let clusterID = try Self.clusterID(cluster)
        let before = try Self.status(cluster)
        let hashes = try cluster.hashKVs()
        try #require(before.leaders.count == 1 && Set(hashes).count == 1, "\(before) \(hashes)")
        let leader = NodeID(before.leaders.first!)
        let members = try cluster.etcdctl("member", "list").stdout

        // Every member is attacked, the leader and the followers.
        for (index, target) in before.ids.enumerated() {
            let peer = HostPort(host: "127.0.0.1", port: cluster.members[index].peerPort)
            let member = before.ids.first { $0 != target }!
            let term = Term(before.terms[index])
            // Forged: an ID no member has, with a made-up proof.
            let forged = NodeID(0xF0F0_0000 + UInt64(index))
            let attempts: [(String, NodeID, (PeerFrame) -> PeerFrame)] = [
                ("forged", forged, { _ in .proof((0..<32).map { _ in UInt8.random(in: .min ... .max) }) }),
                ("no credentials", member, { _ in .proof([]) }),
                ("removed", removed, { challenge in
                    // With the secret itself, as a removed member still has it.
                    guard case .challenge(let nonce, _) = challenge else { return .proof([]) }
                    return .proof(secret.proof(.dialler, clusterID: clusterID, from: removed, to: target, diallerNonce: Self.nonce, listenerNonce: nonce))
                }),
            ]
            for (name, claimed, proof) in attempts {
                let hello = PeerFrame.hello(version: PeerFrame.protocolVersion, clusterID: clusterID, from: claimed, to: target, nonce: Self.nonce, engine: EngineKind(rawValue: cluster.engine)!.wireCode)
                let frames = try Self.payload(clusterID: clusterID, from: claimed, to: target, leader: leader, term: term)
                let answers = try await PeerConversation.run(peer, hello: hello, proof: proof, then: frames)
                // The listener's challenge carries no proof a stranger could use, and nothing
                // is answered but the refusal.
                let refusals = answers.filter { if case .refused = $0 { true } else { false } }
                #expect(refusals.count == 1, "\(name) → member \(index): \(answers)")
                #expect(!answers.contains { if case .response = $0 { true } else { false } }, "\(name) → member \(index): \(answers)")
                let expected: PeerRefusal = name == "removed" ? .removed : .unproven
                #expect(refusals.contains { if case .refused(expected, _) = $0 { true } else { false } }, "\(name) → member \(index): \(answers)")
            }
        }

        // Nothing changed: the data, the leader, the terms, the members.
        let after = try Self.status(cluster)
        #expect(after.leaders == before.leaders, "\(before) → \(after)")
        #expect(after.terms == before.terms, "\(before) → \(after)")
        #expect(try cluster.hashKVs() == hashes)
        #expect(try cluster.etcdctl("member", "list").stdout == members)
        #expect(try cluster.etcdctl("get", "owned").stdout.isEmpty)
        try cluster.etcdctl("put", "still", "serving")
        // Each refusal is counted in the attacked member's /metrics, by why.
        for index in cluster.members.indices {
            let metrics = try cluster.http(index, "/metrics").stdout
            for (reason, count) in [("unproven", 2), ("removed", 1)] {
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("ballot_peer_connections_refused_total{reason=\"\(reason)\"}") }
                #expect(line.flatMap { Int($0.split(separator: " ").last ?? "") }.map { $0 >= count } == true, "\(reason): \(line ?? "none")")
            }
        }
        // Each refusal is in the attacked member's log, with the address it came from.
        for member in cluster.members {
            let log = (try? String(contentsOfFile: member.log, encoding: .utf8)) ?? ""
            #expect(log.components(separatedBy: "refused a peer connection").count - 1 >= 3, "\(log)")
            #expect(log.contains("did not prove it holds this cluster's peer secret") && log.contains("remote="), "\(log)")
        }
    }

    /// The control: without a peer secret, a member's ID is all a dialler
    /// shows, and the same higher-term messages depose the leader. The
    /// test above would see it: this is the attack the secret stops.
    @Test func withoutASecretAClaimedMemberIDDeposesTheLeader() async throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let clusterID = try Self.clusterID(cluster)
        let before = try Self.status(cluster)
        try #require(before.leaders.count == 1)
        let leader = NodeID(before.leaders.first!)
        let index = try #require(before.ids.firstIndex(of: leader))
        let member = before.ids.first { $0 != leader }!
        let peer = HostPort(host: "127.0.0.1", port: cluster.members[index].peerPort)
        let hello = PeerFrame.hello(version: PeerFrame.protocolVersion, clusterID: clusterID, from: member, to: leader, nonce: Self.nonce, engine: EngineKind(rawValue: cluster.engine)!.wireCode)
        let frames = try Self.payload(clusterID: clusterID, from: member, to: leader, leader: leader, term: Term(before.terms[index]))
        _ = try await PeerConversation.run(peer, hello: hello, proof: { _ in .proof([]) }, then: Array(frames.prefix(1)))
        let deadline = Date().addingTimeInterval(10)
        var after = try Self.status(cluster)
        while after.terms == before.terms && Date() < deadline {
            usleep(100_000)
            after = try Self.status(cluster)
        }
        #expect(after.terms[index] > before.terms[index], "\(before) → \(after)")
    }

    static let nonce = Array(repeating: UInt8(7), count: PeerHandshake.nonceBytes)
}

/// One attacker's connection: hello, then its proof once the listener's
/// challenge came (or at once, if it refused), then `frames`; collects
/// every frame the listener sends until it closes (or a few seconds pass).
final class PeerConversation: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PeerFrame
    private let hello: PeerFrame
    private let proof: (PeerFrame) -> PeerFrame
    private let frames: [PeerFrame]
    private let done: EventLoopPromise<[PeerFrame]>
    private var answers: [PeerFrame] = []

    init(hello: PeerFrame, proof: @escaping (PeerFrame) -> PeerFrame, frames: [PeerFrame], done: EventLoopPromise<[PeerFrame]>) {
        self.hello = hello
        self.proof = proof
        self.frames = frames
        self.done = done
    }

    static let secondsMax: Int64 = 5

    static func run(_ peer: HostPort, hello: PeerFrame, proof: @escaping (PeerFrame) -> PeerFrame, then frames: [PeerFrame]) async throws -> [PeerFrame] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = loop.makePromise(of: [PeerFrame].self)
        let handler = PeerConversation(hello: hello, proof: proof, frames: frames, done: done)
        _ = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: peer.host, port: peer.port).get()
        return try await done.futureResult.get()
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(hello), promise: nil)
        context.eventLoop.scheduleTask(in: .seconds(Self.secondsMax)) { [channel = context.channel] in channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        answers.append(frame)
        if answers.count == 1 {
            // Whatever came first, the attacker presses on: a proof, then the payload.
            context.write(NIOAny(proof(frame)), promise: nil)
            for next in frames { context.write(NIOAny(next), promise: nil) }
            context.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(answers)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
