import Consensus
import Foundation
import NIOCore
import NIOPosix
@testable import Server
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

    /// Seconds a test waits for the member's answer or close; then it closes itself.
    static let answerTimeout: TimeAmount = .seconds(30)

    /// The first frame the member sends back, or nil if it closed first.
    static func firstAnswer(_ connection: PeerFrame.Connection, sending frames: [PeerFrame]) async throws -> PeerFrame? {
        let channel = connection.channel
        let timer = channel.eventLoop.scheduleTask(in: answerTimeout) { channel.close(promise: nil) }
        defer { timer.cancel() }
        return try await connection.executeThenClose { inbound, outbound in
            for frame in frames { try await outbound.write(frame) }
            var answers = inbound.makeAsyncIterator()
            return try await answers.next()
        }
    }

    /// Write `bytes` on a plain TCP connection and wait for the member to
    /// close it; false if the member did not close it in time.
    static func sendRawUntilClosed(to peer: HostPort, _ bytes: [UInt8]) async throws -> Bool {
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: peer.host, port: peer.port).get()
        let timedOut = raw.eventLoop.scheduleTask(in: answerTimeout) { raw.close(promise: nil) }
        // The member may close before the write completes: that is the point.
        try? await raw.writeAndFlush(ByteBuffer(bytes: bytes))
        try await raw.closeFuture.get()
        timedOut.cancel()
        // Cancelled in time only if the member closed first.
        return (try? await timedOut.futureResult.get()) == nil
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
        // When each step began, for a failure message.
        var steps: [String] = []
        func step(_ name: String) { steps.append("\(Date()) \(name)") }

        // A length past the limit: the connection is closed before the
        // member buffers anything.
        step("a 4 GiB length")
        #expect(try await Self.sendRawUntilClosed(to: peer, [0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3]), "\(cluster.logs())")

        // So is a first frame larger than a hello, however well formed.
        step("a large first frame")
        var large = ByteBuffer()
        try PeerFrame.messages([Array(repeating: 1, count: 200)]).write(to: &large)
        #expect(try await Self.sendRawUntilClosed(to: peer, Array(large.readableBytesView)), "\(cluster.logs())")

        // Another cluster is refused with the flag to check.
        let wrongCluster = try await Self.firstAnswer(
            try await PeerTransport.dial(peer),
            sending: [.hello(version: PeerFrame.protocolVersion, clusterID: clusterID &+ 1, from: stranger)])
        guard case .refused(.wrongCluster, let message)? = wrongCluster else {
            Issue.record("expected a wrong-cluster refusal, got \(String(describing: wrongCluster))")
            return
        }
        #expect(message.contains("check --initial-cluster-token"), "\(message)")

        // Another protocol version, and no hello at all.
        let wrongVersion = try await Self.firstAnswer(
            try await PeerTransport.dial(peer),
            sending: [.hello(version: PeerFrame.protocolVersion + 1, clusterID: clusterID, from: stranger)])
        #expect(wrongVersion.map { if case .refused(.wrongVersion, _) = $0 { true } else { false } } == true, "\(String(describing: wrongVersion))")
        let noHello = try await Self.firstAnswer(
            try await PeerTransport.dial(peer), sending: [.request(id: 1, kind: .ping, payload: [])])
        #expect(noHello.map { if case .refused(.noHello, _) = $0 { true } else { false } } == true, "\(String(describing: noHello))")

        // Unreadable consensus messages are dropped, and the same
        // connection still answers a request after them.
        let hello = PeerFrame.hello(version: PeerFrame.protocolVersion, clusterID: clusterID, from: stranger)
        let answered = try await Self.firstAnswer(
            try await PeerTransport.dial(peer),
            sending: [hello, .messages([[0xBA, 0xD0], []]), .request(id: 9, kind: .ping, payload: [])])
        #expect(answered == .response(id: 9, code: 0, message: "", payload: []))

        // A frame whose fields do not match its length closes the connection.
        var garbled = ByteBuffer()
        try hello.write(to: &garbled)
        garbled.writeBytes([0, 0, 0, 3, 4, 0, 0])
        #expect(try await Self.sendRawUntilClosed(to: peer, Array(garbled.readableBytesView)), "\(cluster.logs())")

        // The member still serves, with nothing lost, and said why it
        // refused each connection.
        step("checks")
        #expect(cluster.members[0].process?.isRunning == true)
        try cluster.etcdctl("put", "after", "2", endpoints: cluster.endpoint(0))
        let read = try cluster.etcdctl("get", "", "--prefix", "--consistency=l", endpoints: cluster.endpoint(0))
        #expect(read.stdout.contains("before\n1\n") && read.stdout.contains("after\n2\n"), "\(read.stdout)")
        // Each reason is logged as its connection closes; allow the member a moment.
        let reasons = [
            "peer frame of 4294967280 bytes exceeds the limit", "peer frame of 209 bytes exceeds the limit",
            "dropping an undecodable peer message", "does not match its length",
        ]
        let deadline = Date().addingTimeInterval(10)
        while !reasons.allSatisfy(log().contains) && Date() < deadline { usleep(100_000) }
        let text = log()
        for reason in reasons {
            #expect(text.contains(reason), "\(steps)\n\(cluster.logs())")
        }
    }
}
