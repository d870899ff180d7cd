import Foundation
@testable import Server
import Testing

@Suite struct AutoCompactionPolicyTests {
    @Test func parsesEtcdRetentionForms() throws {
        #expect(try AutoCompaction(mode: "periodic", retention: "0") == .off)
        #expect(try AutoCompaction(mode: "periodic", retention: "1") == .periodic(seconds: 3600))
        #expect(try AutoCompaction(mode: "periodic", retention: "1h30m") == .periodic(seconds: 5400))
        #expect(try AutoCompaction(mode: "periodic", retention: "10s") == .periodic(seconds: 10))
        #expect(try AutoCompaction(mode: "revision", retention: "1000") == .revision(1000))
        #expect(throws: ConfigError.self) { try AutoCompaction(mode: "periodic", retention: "soon") }
        #expect(throws: ConfigError.self) { try AutoCompaction(mode: "revision", retention: "1h") }
        #expect(throws: ConfigError.self) { try AutoCompaction(mode: "hourly", retention: "1") }
    }

    @Test func periodicCompactsToTheRevisionCurrentOneRetentionAgo() {
        var planner = CompactionPlanner(policy: .periodic(seconds: 10), now: 0)
        #expect(planner.pollSeconds == 1)
        var chosen: [(Double, Int64)] = []
        for second in 1...35 {
            // One revision per second: revision r was current at second r.
            if let target = planner.due(now: Double(second), current: Int64(second), compacted: chosen.last?.1 ?? 0) {
                chosen.append((Double(second), target))
            }
        }
        // Once per retention, each time to what was current 10 s before.
        #expect(chosen.map(\.0) == [11, 21, 31])
        #expect(chosen.map(\.1) == [1, 11, 21])
    }

    @Test func revisionModeKeepsTheNewestRevisions() {
        var planner = CompactionPlanner(policy: .revision(100), now: 0)
        #expect(planner.due(now: 10, current: 1_000, compacted: 0) == nil)  // not yet time
        #expect(planner.due(now: 300, current: 1_000, compacted: 0) == 900)
        #expect(planner.due(now: 600, current: 950, compacted: 900) == nil)  // nothing new to drop
        #expect(planner.due(now: 900, current: 2_000, compacted: 900) == 1_900)
    }
}

/// etcd's --auto-compaction-mode periodic, end to end: old revisions become
/// unreadable with etcd's error; the newest value stays.
@Suite(.serialized) struct AutoCompactionTests {
    @Test func periodicRetentionCompactsOldRevisions() throws {
        let cluster = try TestCluster(extraArguments: ["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"])
        defer { cluster.cleanUp() }
        let first = try cluster.etcdctl("put", "auto", "v1", "-w", "json")
        let object = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any]
        let revision = try #require(((object?["header"] as? [String: Any])?["revision"] as? NSNumber)?.int64Value)
        #expect(try cluster.etcdctl("get", "auto", "--rev=\(revision)", "--print-value-only").stdout == "v1\n")
        _ = try cluster.etcdctl("put", "auto", "v2")
        let deadline = Date().addingTimeInterval(20)
        var old: TestCluster.Output
        repeat {
            usleep(500_000)
            _ = try cluster.etcdctl("put", "tick", "x")
            old = try cluster.etcdctl("get", "auto", "--rev=\(revision)")
        } while old.status == 0 && Date() < deadline
        #expect(old.status != 0 && old.stderr.contains("etcdserver: mvcc: required revision has been compacted"),
                "revision \(revision) is still readable: \(old)\n\(cluster.logs())")
        #expect(try cluster.etcdctl("get", "auto", "--print-value-only").stdout == "v2\n")
        #expect(cluster.logs().contains("auto-compacted"))
    }
}
