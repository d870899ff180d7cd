import Foundation
import Testing

/// SIGKILL the leader under a write load from several clients: the cluster
/// elects a new leader and keeps serving; once the killed member is back,
/// every acknowledged write is readable from every member and the members'
/// HashKV agree.
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

        // Every acknowledged write, read from every member alone (serializable).
        for i in 0..<3 {
            let stored = try cluster.loadKeys(on: i)
            let missing = acked.filter { stored[$0.key] != $0.value }
            #expect(missing.isEmpty, "member \(i) lacks \(missing.count) acknowledged writes, e.g. \(missing.first.map { "\($0)" } ?? "")")
        }
        // Same history on every member: HashKV at the same revision agrees.
        let hashes = try cluster.hashes(at: revisions[0])
        #expect(Set(hashes).count == 1 && hashes[0] != 0, "HashKV differs: \(hashes)")
    }
}
