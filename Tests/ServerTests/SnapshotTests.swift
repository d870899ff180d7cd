import Foundation
import Testing

/// Log compaction and snapshot transfer between real members: a member
/// that was down while the others compacted their logs past its last entry
/// catches up by a snapshot streamed from the leader, then restarts from it.
@Suite(.serialized) struct SnapshotTests {
    @Test func laggingMemberCatchesUpBySnapshotAndRestartsFromIt() throws {
        let cluster = try TestCluster(extraArguments: ["--snapshot-count", "50"])
        defer { cluster.cleanUp() }
        cluster.kill(2)
        // Long enough for several compactions even on a busy CI machine and
        // after an election (the killed member may have led): a run in CI
        // acknowledged 195 writes in 4 s.
        let (acks, finished) = try LoadRun(seconds: 8, clients: 4, endpoints: [0, 1].map(cluster.endpoint)).finish()
        let acked = Dictionary(uniqueKeysWithValues: acks.map { ($0.key, $0.value) })
        #expect(finished, "load generator did not finish")
        try #require(acked.count > 200, "only \(acked.count) writes acknowledged\n\(cluster.logs())")
        let survivorLogs = try (0..<2).map { try String(contentsOfFile: cluster.members[$0].log, encoding: .utf8) }.joined()
        #expect(survivorLogs.contains("compacted the log"), "no member compacted its log\n\(survivorLogs)")

        try cluster.start(2)
        let revisions = try cluster.waitForSameRevision(timeout: 60)
        #expect(Set(revisions).count == 1, "members' revisions differ: \(revisions)\n\(cluster.logs())")
        let laggard = try String(contentsOfFile: cluster.members[2].log, encoding: .utf8)
        #expect(laggard.contains("received a snapshot") && laggard.contains("installed a snapshot"), "no snapshot installed\n\(laggard)")
        let leaders = try (0..<2).map { try String(contentsOfFile: cluster.members[$0].log, encoding: .utf8) }.joined()
        #expect(leaders.contains("sending a snapshot") && leaders.contains("snapshot transfer progress") && leaders.contains("sent a snapshot"),
                "the leader did not log the transfer\n\(leaders)")
        for i in 0..<3 {
            let stored = try cluster.loadKeys(on: i)
            let missing = acked.filter { stored[$0.key] != $0.value }
            #expect(missing.isEmpty, "member \(i) lacks \(missing.count) acknowledged writes")
        }
        let hashes = try cluster.hashes(at: revisions[0])
        #expect(Set(hashes).count == 1 && hashes[0] != 0, "HashKV differs: \(hashes)")

        // Restart it (SIGKILL): it recovers from the installed snapshot and its log.
        try Self.restart(2, in: cluster, holding: acked, "after restarting the member that installed a snapshot")
        // A member that compacted its own log restarts from the compacted log.
        try Self.restart(0, in: cluster, holding: acked, "after restarting a member that compacted its log")
        let log = try String(contentsOfFile: cluster.members[0].log, encoding: .utf8)
        let recovered = log.split(separator: "\n").first { $0.contains("recovered") }
        let compacted = recovered.flatMap { line in line.firstMatch(of: /compacted=(\d+)/).map { Int($0.1) ?? 0 } } ?? 0
        #expect(compacted > 0, "member 0 did not restart from a compacted log: \(recovered ?? "no recovery line")")
    }

    /// SIGKILL member `i`, start it again, and check it catches up holding
    /// every acknowledged write, with the same HashKV as the others.
    static func restart(_ i: Int, in cluster: TestCluster, holding acked: [String: String], _ context: String) throws {
        cluster.kill(i)
        try cluster.start(i)
        let revisions = try cluster.waitForSameRevision(timeout: 30)
        #expect(Set(revisions).count == 1, "members' revisions differ \(context): \(revisions)\n\(cluster.logs())")
        let stored = try cluster.loadKeys(on: i)
        #expect(acked.allSatisfy { stored[$0.key] == $0.value }, "member \(i) lost acknowledged writes \(context)")
        let hashes = try cluster.hashes(at: revisions[0])
        #expect(Set(hashes).count == 1 && hashes[0] != 0, "HashKV differs \(context): \(hashes)")
    }
}
