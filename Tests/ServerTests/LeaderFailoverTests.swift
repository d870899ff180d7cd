import Consensus
import Foundation
import Testing

/// SIGKILL the leader under a write load from several clients: the cluster
/// elects a new leader and keeps serving; once the killed member is back,
/// every acknowledged write is readable from every member and the members'
/// HashKV agree. Then SIGKILL members at random points of a load, leaders
/// and followers: a member answers a write once applied, before the store's
/// commit reaches the disk, and restarts from its log.
@Suite(.serialized) struct LeaderFailoverTests {
    struct EndpointStatus {
        var member: UInt64
        var leader: UInt64
        var revision: Int64
    }

    static func status(_ cluster: TestCluster, _ i: Int) -> EndpointStatus? {
        guard let out = try? cluster.etcdctl("endpoint", "status", "-w", "json", endpoints: cluster.endpoint(i), timeout: 10),
              out.status == 0,
              let list = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]],
              let status = list.first?["Status"] as? [String: Any],
              let header = status["header"] as? [String: Any]
        else { return nil }
        return EndpointStatus(
            member: (header["member_id"] as? NSNumber)?.uint64Value ?? 0,
            leader: (status["leader"] as? NSNumber)?.uint64Value ?? 0,
            revision: (header["revision"] as? NSNumber)?.int64Value ?? 0)
    }

    @Test func killedLeaderLosesNoAcknowledgedWrite() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let statuses = (0..<3).compactMap { Self.status(cluster, $0) }
        try #require(statuses.count == 3, "endpoint status failed\n\(cluster.logs())")
        let leaderID = statuses[0].leader
        let leader = try #require(statuses.firstIndex { $0.member == leaderID }, "no member is the leader \(leaderID)")

        // Load for 8 s from 6 clients; kill the leader 2 s in.
        let load = try LoadRun(seconds: 8, clients: 6, endpoints: (0..<3).map(cluster.endpoint))
        Thread.sleep(forTimeInterval: 2)
        let killedAt = Date().timeIntervalSince1970
        cluster.kill(leader)
        let (acks, finished) = load.finish()
        let acked = Dictionary(uniqueKeysWithValues: acks.map { ($0.key, $0.value) })
        let afterKill = acks.filter { $0.at > killedAt + 0.1 }.count
        print("failover: \(acked.count) writes acknowledged, \(afterKill) after the leader was killed")
        #expect(finished, "load generator did not finish")
        #expect(acked.count > 100, "only \(acked.count) writes acknowledged")
        #expect(afterKill > 50, "the cluster served only \(afterKill) writes after the leader was killed\n\(cluster.logs())")

        // A new leader among the survivors.
        let survivors = (0..<3).filter { $0 != leader }
        let newLeader = Self.status(cluster, survivors[0])?.leader ?? 0
        #expect(newLeader != 0 && newLeader != leaderID)

        // The killed member comes back and catches up.
        try cluster.start(leader)
        let revisions = try cluster.waitForSameRevision()
        #expect(Set(revisions).count == 1, "members' revisions differ: \(revisions)\n\(cluster.logs())")

        try Self.expectEveryAcknowledgedWrite(acked, cluster, revision: revisions[0])
    }

    /// Five times during a 14 s load, SIGKILL a member picked at random (the
    /// leader or a follower) at a random moment, and start it again a
    /// random while later: one member down at a time, so writes go on.
    @Test func membersKilledAtRandomPointsLoseNoAcknowledgedWrite() throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["BALLOT_CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        print("random kills: seed \(seed) (BALLOT_CRASH_SEED=\(seed) repeats the choices)")
        var random = DeterministicRandom(seed: seed)
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.waitUntilWritable()
        let load = try LoadRun(seconds: 14, clients: 6, endpoints: (0..<3).map(cluster.endpoint))
        var killed: [Int] = []
        for _ in 0..<5 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.3...1.2, using: &random))
            let victim = Int.random(in: 0..<3, using: &random)
            cluster.kill(victim)
            killed.append(victim)
            Thread.sleep(forTimeInterval: Double.random(in: 0.2...1.0, using: &random))
            try cluster.start(victim)
        }
        let (acks, finished) = load.finish()
        let acked = Dictionary(uniqueKeysWithValues: acks.map { ($0.key, $0.value) })
        print("random kills of members \(killed): \(acked.count) writes acknowledged")
        #expect(finished, "load generator did not finish")
        #expect(acked.count > 100, "only \(acked.count) writes acknowledged\n\(cluster.logs())")
        let revisions = try cluster.waitForSameRevision()
        #expect(Set(revisions).count == 1, "members' revisions differ: \(revisions)\n\(cluster.logs())")
        try Self.expectEveryAcknowledgedWrite(acked, cluster, revision: revisions[0])
    }

    /// Every acknowledged write, read from every member alone
    /// (serializable), and the same history everywhere: HashKV agrees.
    static func expectEveryAcknowledgedWrite(_ acked: [String: String], _ cluster: TestCluster, revision: Int64) throws {
        for i in 0..<3 {
            let stored = try cluster.loadKeys(on: i)
            let missing = acked.filter { stored[$0.key] != $0.value }
            #expect(missing.isEmpty, "member \(i) lacks \(missing.count) acknowledged writes, e.g. \(missing.first.map { "\($0)" } ?? "")")
        }
        let hashes = try cluster.hashes(at: revision)
        #expect(Set(hashes).count == 1 && hashes[0] != 0, "HashKV differs: \(hashes)")
    }
}

