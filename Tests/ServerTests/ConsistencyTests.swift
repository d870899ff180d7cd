import Foundation
import Testing

/// The consistency levels on a real 3-member cluster with one follower cut
/// off from its peers by the network (`NetworkPartition`) while clients
/// still reach it: linearizable reads never return the stale value,
/// serializable reads from the cut-off follower do, bounded-staleness reads
/// either meet their bound or are refused with the documented error, and
/// lease reads on the leader see the newest write. Over gRPC (grpcio, with
/// Ballot's metadata) and over the JSON gateway (with its headers).
@Suite(.serialized, .timeLimit(.minutes(10))) struct ConsistencyTests {
    static let script = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/consistency_read.py").path

    /// What a read got: a value, no key, or an error's gRPC code and message.
    enum Read: Equatable, CustomStringConvertible {
        case value(String)
        case missing
        case error(code: String, message: String)

        var description: String {
            switch self {
            case .value(let v): "value \(v)"
            case .missing: "missing"
            case .error(let code, let message): "error \(code) \(message)"
            }
        }

        var isStaleRefusal: Bool {
            if case .error(let code, let message) = self { return code == "UNAVAILABLE" && message.hasPrefix("ballot: this member is staler than the read's bound") }
            return false
        }
    }

    @Test func aCutOffFollowerServesEachLevelAsDocumented() throws {
        let violations = try Self.partitionScenario(bug: nil)
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
    }

    /// The scenario bites: a member that serves bounded reads without
    /// checking its freshness is caught answering one with the stale value.
    @Test func servingBoundedReadsUncheckedIsCaught() throws {
        let violations = try Self.partitionScenario(bug: "serves-bounded-reads-unchecked")
        #expect(violations.contains { $0.contains("bounded read on the cut-off follower") && $0.contains("returned the stale v1") }, "\(violations)")
    }

    /// A learner serves bounded-staleness reads: it proves its freshness with
    /// a read index the leader confirms, as any member does; with no leader
    /// to confirm it, it refuses them once the bound has passed.
    @Test func aLearnerServesBoundedReads() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "k", "v1")
        let ports = try TestCluster.freePorts(2)
        let add = try cluster.etcdctl("member", "add", "m4", "--learner", "--peer-urls=http://127.0.0.1:\(ports[0])")
        try #require(add.status == 0, "\(add.stderr)")
        let learner = try cluster.startJoining(name: "m4", peerPort: ports[0], clientPort: ports[1])
        try Self.await("the learner to apply v1") { try Self.read(cluster, learner, "etcd-serializable") == .value("v1") }
        try cluster.etcdctl("put", "k", "v2")
        // Bounded by 2 s: the learner confirms its place before answering, so it sees v2.
        #expect(try Self.read(cluster, learner, "bounded", ms: "2000") == .value("v2"))
        // With every voter stopped, no leader confirms anything: refused once the bound passed.
        for i in 0..<3 { cluster.kill(i) }
        usleep(600_000)
        let alone = try Self.read(cluster, learner, "bounded", ms: "300")
        #expect(alone.isStaleRefusal, "\(alone)")
    }

    /// Runs the scenario; returns what broke a level's promise (empty: none).
    static func partitionScenario(bug: String?) throws -> [String] {
        let network = try NetworkPartition()
        defer { network.remove() }
        let isolated = 2
        let outside = TestCluster.Placement(peerHost: network.outsidePeerHost)
        let placements = [0: outside, 1: outside,
                          isolated: TestCluster.Placement(peerHost: network.isolatedPeerHost, clientHost: network.isolatedClientHost, namespace: network.namespace)]
        let cluster = try TestCluster(extraArguments: ["--allow-plaintext-non-loopback", "--lease-reads"], placements: placements, prepare: { cluster in
            if let bug { for i in 0..<3 { cluster.memberEnvironment[i] = ["BALLOT_INJECT_BUG": bug] } }
        })
        defer { cluster.cleanUp() }
        var violations: [String] = []

        // The member to cut off follows; m1 leads.
        let status = try PeerAttackTests.status(cluster)
        let m1 = status.ids[0]
        if status.leaders != [m1.rawValue] {
            let moved = try cluster.etcdctl("move-leader", String(m1.rawValue, radix: 16))
            try #require(moved.status == 0, "\(moved.stdout)\(moved.stderr)")
        }
        try cluster.etcdctl("put", "k", "v1", endpoints: cluster.endpoint(0))
        try Self.await("the follower to apply v1") { try read(cluster, isolated, "etcd-serializable") == .value("v1") }
        // Before the cut, every level on the follower sees v1.
        for level in ["linearizable", "lease", "serializable"] {
            let got = try read(cluster, isolated, level)
            if got != .value("v1") { violations.append("before the cut, a \(level) read on the follower got \(got)") }
        }
        let boundedBefore = try read(cluster, isolated, "bounded", ms: "2000")
        if boundedBefore != .value("v1") { violations.append("before the cut, a bounded read on the follower got \(boundedBefore)") }

        try network.cutPeers()
        let cutAt = Date()
        let put = try cluster.etcdctl("put", "k", "v2", endpoints: cluster.endpoint(0))
        try #require(put.status == 0, "the leader and the other follower are a quorum: \(put.stderr)")

        // The cut-off follower: its own store still holds v1.
        let serializable = try read(cluster, isolated, "etcd-serializable")
        if serializable != .value("v1") { violations.append("a serializable read on the cut-off follower got \(serializable), not its stale v1") }
        let gatewaySerializable = try gatewayRead(cluster, isolated, level: "serializable")
        if gatewaySerializable != .value("v1") { violations.append("a serializable gateway read on the cut-off follower got \(gatewaySerializable)") }
        // Linearizable and lease reads there never answer v1: cut off, the
        // follower cannot learn v2, so they fail.
        for level in ["linearizable", "lease"] {
            let got = try read(cluster, isolated, level)
            if got == .value("v1") { violations.append("a \(level) read on the cut-off follower returned the stale v1") }
            if case .error = got {} else { violations.append("a \(level) read on the cut-off follower got \(got), not an error") }
        }
        let ctl = try cluster.etcdctl("get", "k", "--print-value-only", "--command-timeout=3s", endpoints: cluster.endpoint(isolated))
        if ctl.stdout.contains("v1") { violations.append("etcdctl's linearizable get on the cut-off follower returned the stale v1") }
        // Bounded reads there: refused once the bound has passed since the cut.
        while Date().timeIntervalSince(cutAt) < 0.5 { usleep(50_000) }
        for (ms, revisions) in [("300", nil), ("300", "5"), (nil, "0")] as [(String?, String?)] {
            let got = try read(cluster, isolated, "bounded", ms: ms, revisions: revisions)
            if got == .value("v1") { violations.append("a bounded read on the cut-off follower (ms \(ms ?? "-"), revisions \(revisions ?? "-")) returned the stale v1") }
            if !got.isStaleRefusal { violations.append("a bounded read on the cut-off follower got \(got), not the documented refusal") }
        }
        let gatewayBounded = try gatewayRead(cluster, isolated, level: "bounded", ms: "300")
        if !gatewayBounded.isStaleRefusal {
            violations.append("a bounded gateway read on the cut-off follower got \(gatewayBounded)")
        }

        // The leader and the connected follower: every level sees v2.
        for member in [0, 1] {
            for level in ["linearizable", "lease", "serializable"] {
                let got = try read(cluster, member, level)
                if got != .value("v2") && level != "serializable" { violations.append("a \(level) read on m\(member + 1) got \(got), not v2") }
            }
            let bounded = try read(cluster, member, "bounded", ms: "1000")
            if bounded != .value("v2") { violations.append("a bounded read on m\(member + 1) got \(bounded), not v2") }
        }

        // Healed, the follower catches up and meets the bound again.
        try network.healPeers()
        try Self.await("the healed follower to serve v2 within a bound") {
            try read(cluster, isolated, "bounded", ms: "1000") == .value("v2")
        }
        return violations
    }

    /// A Range over gRPC at `level` on member `i`.
    static func read(_ cluster: TestCluster, _ i: Int, _ level: String, ms: String? = nil, revisions: String? = nil) throws -> Read {
        let run = try TestCluster.run("/usr/bin/env", ["python3", script, cluster.endpoint(i), "k", level, ms ?? "", revisions ?? ""], timeout: 30)
        return try parse(run.stdout, run)
    }

    /// A range through the JSON gateway, with Ballot's headers.
    static func gatewayRead(_ cluster: TestCluster, _ i: Int, level: String, ms: String? = nil) throws -> Read {
        var arguments = ["-s", "-m", "10", "-X", "POST", "-H", "Ballot-Consistency: \(level)", "-d", #"{"key":"aw=="}"#]
        if let ms { arguments += ["-H", "Ballot-Max-Staleness-Ms: \(ms)"] }
        let run = try TestCluster.run("/usr/bin/curl", arguments + ["http://\(cluster.endpoint(i))/v3/kv/range"], timeout: 30)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)\(run.stderr)")
        if let message = json["message"] as? String {
            let codes = [14: "UNAVAILABLE", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED"]
            return .error(code: codes[(json["code"] as? NSNumber)?.intValue ?? -1] ?? "\(json["code"] ?? "?")", message: message)
        }
        guard let kvs = json["kvs"] as? [[String: Any]], let value = kvs.first?["value"] as? String else { return .missing }
        return .value(String(decoding: Data(base64Encoded: value) ?? Data(), as: UTF8.self))
    }

    static func parse(_ line: String, _ run: TestCluster.Output) throws -> Read {
        let line = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("value ") { return .value(String(line.dropFirst(6))) }
        if line == "missing" { return .missing }
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        try #require(parts.count >= 2 && parts[0] == "error", "consistency_read.py printed \(run.stdout)\(run.stderr)")
        return .error(code: parts[1], message: parts.count > 2 ? parts[2] : "")
    }

    static func await(_ what: String, seconds: Double = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            usleep(200_000)
        }
        throw TestFailure("waited \(seconds) s for \(what)")
    }
}
