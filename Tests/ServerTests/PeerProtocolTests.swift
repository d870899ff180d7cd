import Engines
import Consensus
import Foundation
import NIOCore
import NIOPosix
@testable import Server
import Storage
import Testing

/// What a member does with peer connections it should not trust: an
/// oversized or garbled frame, another cluster, no hello, messages it
/// cannot read. Each is refused or dropped with a reason in the log, and
/// the member goes on serving with nothing lost.
@Suite(.serialized) struct PeerProtocolTests {
    static func match(_ pattern: String, in text: String) -> String? {
        guard let range = text.range(of: pattern, options: .regularExpression) else { return nil }
        return String(text[range]).split(separator: "=").last.map(String.init)
    }

    /// What came back on a connection: the member's first frame, or nil if
    /// it closed first, and how long after our bytes went out.
    struct Exchange {
        var answer: PeerFrame?
        var seconds: Double
    }

    /// A member answers or closes within this many seconds of bad input;
    /// its idle limit (30 s) is the slow way a connection ends, so an
    /// exchange taking that long shows the input was not what closed it.
    static let answerSecondsMax = 10.0

    /// Sends `bytes` the moment the connection is up and records the first
    /// frame back (or the close) with its time, all on the connection's
    /// event loop: a test process busy with other suites cannot delay the
    /// bytes past the member's idle limit.
    final class Exchanger: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = PeerFrame
        let bytes: [UInt8]
        let done: EventLoopPromise<Exchange>
        let skipsChallenge: Bool
        private var sentAt: ContinuousClock.Instant?
        private var finished = false

        init(bytes: [UInt8], done: EventLoopPromise<Exchange>, skipsChallenge: Bool) {
            self.skipsChallenge = skipsChallenge
            self.bytes = bytes
            self.done = done
        }

        func channelActive(context: ChannelHandlerContext) {
            sentAt = .now
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            context.eventLoop.scheduleTask(in: .seconds(Int64(PeerProtocolTests.answerSecondsMax * 3))) { [channel = context.channel] in
                channel.close(promise: nil)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            // The listener's half of the handshake comes first; the
            // exchange is about what follows it.
            if case .challenge = frame, skipsChallenge { return }
            finish(frame)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func finish(_ answer: PeerFrame?) {
            guard !finished, let sentAt else { return }
            finished = true
            let elapsed = ContinuousClock.now - sentAt
            done.succeed(Exchange(answer: answer, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        }
    }

    static func exchange(_ peer: HostPort, _ bytes: [UInt8], skipsChallenge: Bool = true) async throws -> Exchange {
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let done = loop.makePromise(of: Exchange.self)
        _ = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(Exchanger(bytes: bytes, done: done, skipsChallenge: skipsChallenge))
                }
            }
            .connect(host: peer.host, port: peer.port).get()
        return try await done.futureResult.get()
    }

    static func exchange(_ peer: HostPort, _ frames: [PeerFrame], skipsChallenge: Bool = true) async throws -> Exchange {
        var buffer = ByteBuffer()
        for frame in frames { try frame.write(to: &buffer) }
        return try await exchange(peer, Array(buffer.readableBytesView), skipsChallenge: skipsChallenge)
    }

    /// A hello from `from` to `to`, with a fresh nonce.
    static func hello(_ clusterID: UInt64, from: NodeID, to: NodeID, version: UInt16 = PeerFrame.protocolVersion) -> PeerFrame {
        .hello(version: version, clusterID: clusterID, from: from, to: to, nonce: PeerHandshake.nonce(), engine: EngineKind(rawValue: TestCluster.engineFromEnvironment)!.wireCode)
    }

    @Test func badPeerInputIsRefusedAndTheMemberKeepsServing() async throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "before", "1")
        let log = { (try? String(contentsOfFile: cluster.members[0].log, encoding: .utf8)) ?? "" }
        let clusterHex = try #require(Self.match("cluster=[0-9a-f]+", in: log()), "\(log())")
        let clusterID = try #require(UInt64(clusterHex, radix: 16))
        let peer = HostPort(host: "127.0.0.1", port: cluster.members[0].peerPort)
        let stranger = NodeID(0x5EED)
        let status = try cluster.etcdctl("endpoint", "status", "-w", "json")
        let fields = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]] ?? []).map { $0["Status"] as? [String: Any] }
        let ids = fields.map { (($0?["header"] as? [String: Any])?["member_id"] as? NSNumber)?.uint64Value }
        let leaders = fields.map { ($0?["leader"] as? NSNumber)?.uint64Value }
        try #require(ids.count == cluster.members.count && Set(leaders).count == 1 && !ids.contains(nil), "\(status.stdout)")
        let memberIDs = ids.map { NodeID($0!) }
        // A member other than member 0, which member 0 knows.
        let known = memberIDs[1]
        let hello = Self.hello(clusterID, from: known, to: memberIDs[0])

        // A length past the limit: the connection is closed before the
        // member buffers anything.
        let huge = try await Self.exchange(peer, [0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3])
        #expect(huge.answer == nil && huge.seconds < Self.answerSecondsMax, "\(huge)")

        // So is a first frame larger than a hello, however well formed,
        // and a proof larger than one after an admitted hello.
        let large = try await Self.exchange(peer, [.messages([Array(repeating: 1, count: 200)])])
        #expect(large.answer == nil && large.seconds < Self.answerSecondsMax, "\(large)")
        let largeProof = try await Self.exchange(peer, [hello, .proof(Array(repeating: 1, count: 200))])
        #expect(largeProof.answer == nil && largeProof.seconds < Self.answerSecondsMax, "\(largeProof)")

        // Another cluster is refused with the flag to check.
        let wrongCluster = try await Self.exchange(peer, [Self.hello(clusterID &+ 1, from: stranger, to: memberIDs[0])])
        guard case .refused(.wrongCluster, let message)? = wrongCluster.answer else {
            Issue.record("expected a wrong-cluster refusal, got \(wrongCluster)")
            return
        }
        #expect(message.contains("check --initial-cluster-token"), "\(message)")

        // Without a peer secret, an ID this member does not know is refused,
        // and so is a hello meant for another member; whatever follows
        // them is never read.
        for (refusedHello, expected) in [(Self.hello(clusterID, from: stranger, to: memberIDs[0]), "is not a member of this cluster"),
                                         (Self.hello(clusterID, from: known, to: memberIDs[2]), "not member")] {
            let refused = try await Self.exchange(peer, [refusedHello, .proof([]), .request(id: 1, kind: .ping, payload: [])])
            guard case .refused(.notMember, let message)? = refused.answer else {
                Issue.record("expected a not-a-member refusal, got \(refused)")
                continue
            }
            #expect(message.contains(expected), "\(message)")
        }
        // Nothing is served before the proof frame.
        let noProof = try await Self.exchange(peer, [hello, .request(id: 1, kind: .ping, payload: [])])
        #expect(noProof.answer.map { if case .refused(.unproven, _) = $0 { true } else { false } } == true, "\(noProof)")

        // A snapshot replaces the whole store: one from anyone but the
        // leader this member follows is refused before a byte is stored,
        // and so is one larger than twice the quota (2 GiB here).
        // Sent to a follower, so that its leader's ID can be claimed too.
        let leader = NodeID(try #require(leaders[0]))
        let follower = try #require(memberIDs.indices.first { memberIDs[$0] != leader })
        let own = memberIDs[follower]
        let other = try #require(memberIDs.first { $0 != leader && $0 != own })
        let followerPeer = HostPort(host: "127.0.0.1", port: cluster.members[follower].peerPort)
        for (sender, size, reason) in [(other, UInt64(4096), "only from the leader this member follows"),
                                       (leader, UInt64(5) << 30, "larger than a store within its quota")] {
            let announce = Consensus.Message(from: sender, to: own, term: Term(1), kind: .snapshot(
                SnapshotMetadata(index: LogIndex(1_000_000), term: Term(1), membership: Membership(voters: [sender, own]))))
            let refused = try await Self.exchange(followerPeer, [
                Self.hello(clusterID, from: sender, to: own), .proof([]),
                .snapshotStart(announce: ConsensusCodec.encode(announce), size: size, checksum: 0),
            ])
            guard case .response(0, let code, let message, _)? = refused.answer, code != 0 else {
                Issue.record("expected the snapshot from \(sender) refused, got \(refused)")
                continue
            }
            #expect(message.contains(reason), "\(message)")
        }

        // Another protocol version, and no hello at all.
        let wrongVersion = try await Self.exchange(peer, [Self.hello(clusterID, from: known, to: memberIDs[0], version: PeerFrame.protocolVersion + 1)])
        #expect(wrongVersion.answer.map { if case .refused(.wrongVersion, _) = $0 { true } else { false } } == true, "\(wrongVersion)")
        let noHello = try await Self.exchange(peer, [.request(id: 1, kind: .ping, payload: [])])
        #expect(noHello.answer.map { if case .refused(.noHello, _) = $0 { true } else { false } } == true, "\(noHello)")

        // Unreadable consensus messages are dropped, and the same
        // connection still answers a request after them.
        let answered = try await Self.exchange(peer, [hello, .proof([]), .messages([[0xBA, 0xD0], []]), .request(id: 9, kind: .ping, payload: [])])
        #expect(answered.answer == .response(id: 9, code: 0, message: "", payload: []), "\(answered)")

        // A frame whose fields do not match its length closes the connection.
        var garbled = ByteBuffer()
        try hello.write(to: &garbled)
        try PeerFrame.proof([]).write(to: &garbled)
        garbled.writeBytes([0, 0, 0, 3, 4, 0, 0])
        let closed = try await Self.exchange(peer, Array(garbled.readableBytesView))
        #expect(closed.answer == nil && closed.seconds < Self.answerSecondsMax, "\(closed)")

        // The member still serves, with nothing lost, and said why it
        // refused each connection.
        #expect(cluster.members[0].process?.isRunning == true)
        #expect(Set(try cluster.hashKVs()).count == 1)
        try cluster.etcdctl("put", "after", "2", endpoints: cluster.endpoint(0))
        let read = try cluster.etcdctl("get", "", "--prefix", "--consistency=l", endpoints: cluster.endpoint(0))
        #expect(read.stdout.contains("before\n1\n") && read.stdout.contains("after\n2\n"), "\(read.stdout)")
        // Each reason is logged as its connection closes; allow the member a moment.
        let reasons = [
            "peer frame of 4294967280 bytes exceeds the limit", "peer frame of 209 bytes exceeds the limit",
            "dropping an undecodable peer message", "does not match its length",
            "refused a peer connection",
        ]
        let deadline = Date().addingTimeInterval(10)
        while !reasons.allSatisfy(log().contains) && Date() < deadline { usleep(100_000) }
        let text = log()
        for reason in reasons {
            #expect(text.contains(reason), "\(cluster.logs())")
        }
        let followerLog = (try? String(contentsOfFile: cluster.members[follower].log, encoding: .utf8)) ?? ""
        #expect(followerLog.components(separatedBy: "refused a snapshot").count - 1 == 2, "\(followerLog)")
    }
}
