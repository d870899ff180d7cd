import Foundation
import Testing

/// The README's error contract: a write whose fate is unknown gets etcd's
/// ambiguous "request timed out", never an error clients read as "not
/// applied" ("no leader" is kept for requests that were never proposed).
@Suite(.serialized) struct ErrorContractTests {
    @Test func aWriteForwardedToAFrozenLeaderIsAmbiguous() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let statuses = (0..<3).compactMap { LeaderFailoverTests.status(cluster, $0) }
        try #require(statuses.count == 3, "endpoint status failed\n\(cluster.logs())")
        let leader = try #require(statuses.firstIndex { $0.member == statuses[0].leader })
        let follower = (leader + 1) % 3
        // The follower forwards to the leader it knows; the leader takes the
        // bytes (its sockets stay open) and never answers.
        cluster.freeze(leader, true)
        let put = try cluster.etcdctl("put", "ambiguous", "v", "--command-timeout=20s", endpoints: cluster.endpoint(follower), timeout: 30)
        cluster.freeze(leader, false)
        #expect(put.status != 0)
        #expect(put.stderr.contains("etcdserver: request timed out"), "\(put.stderr)\n\(cluster.logs())")
        #expect(!put.stderr.contains("no leader"))
        // The cluster goes on, whatever became of the ambiguous write.
        try cluster.waitUntilWritable()
        #expect(try cluster.etcdctl("put", "after", "v", endpoints: cluster.endpoint(follower)).status == 0)
    }
}
