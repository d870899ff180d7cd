import Foundation
import Testing

/// etcdctl member add / promote / remove against a real cluster, with a
/// real fourth process joining it.
@Suite(.serialized) struct EtcdctlMembershipTests {
    static func names(_ out: TestCluster.Output) -> [String] {
        out.stdout.split(separator: "\n").map { $0.components(separatedBy: ", ") }.filter { $0.count == 6 }
            .map { "\($0[2])\($0[5] == "true" ? "(learner)" : "")" }.sorted()
    }

    /// The member list once it equals `expected` (members publish their
    /// names through the log shortly after they start), or the last seen.
    /// The member list once it is `expected` (as etcd 3.4, each member
    /// answers from what it has applied), or the last one read after 20 s.
    static func awaitMembers(_ cluster: TestCluster, _ expected: [String], endpoints: String? = nil) throws -> TestCluster.Output {
        let deadline = Date().addingTimeInterval(20)
        var list = try cluster.etcdctl("member", "list", endpoints: endpoints)
        while names(list) != expected && Date() < deadline {
            usleep(100_000)
            list = try cluster.etcdctl("member", "list", endpoints: endpoints)
        }
        return list
    }

    @Test func addALearnerPromoteItThenRemoveIt() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for i in 0..<20 { try cluster.etcdctl("put", "before/\(i)", "\(i)") }
        let ports = try TestCluster.freePorts(2)
        let add = try cluster.etcdctl("member", "add", "m4", "--learner", "--peer-urls=http://127.0.0.1:\(ports[0])")
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.contains("added to cluster"), "\(add.stdout)")
        #expect(add.stdout.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""))
        let id = try #require(add.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let joined = try cluster.startJoining(name: "m4", peerPort: ports[0], clientPort: ports[1])

        // The learner catches up from the leader's log and serves what was written before it joined.
        let deadline = Date().addingTimeInterval(20)
        var read = TestCluster.Output(status: 1, stdout: "", stderr: "")
        repeat {
            usleep(200_000)
            read = try cluster.etcdctl("get", "before/", "--prefix", "--consistency=s", "--keys-only", endpoints: cluster.endpoint(joined))
        } while read.stdout.split(separator: "\n").count < 20 && Date() < deadline
        #expect(read.stdout.split(separator: "\n").count == 20, "\(read.stdout)\(read.stderr)\n\(cluster.logs())")
        let withLearner = try Self.awaitMembers(cluster, ["m1", "m2", "m3", "m4(learner)"])
        #expect(Self.names(withLearner) == ["m1", "m2", "m3", "m4(learner)"], "\(withLearner.stdout)")

        let promote = try cluster.etcdctl("member", "promote", id)
        #expect(promote.stdout.contains("promoted"), "\(promote.stdout)\(promote.stderr)")
        let promoted = try Self.awaitMembers(cluster, ["m1", "m2", "m3", "m4"])
        #expect(Self.names(promoted) == ["m1", "m2", "m3", "m4"], "\(promoted.stdout)")
        // Now a voter: it serves linearizable reads and takes writes.
        #expect(try cluster.etcdctl("put", "after", "4", endpoints: cluster.endpoint(joined)).stdout == "OK\n")
        #expect(try cluster.etcdctl("get", "after", endpoints: cluster.endpoint(0)).stdout == "after\n4\n")

        let again = try cluster.etcdctl("member", "add", "m4", "--peer-urls=http://127.0.0.1:\(ports[0])")
        // etcd's answer for a URL already in the cluster.
        #expect(again.stderr.contains("etcdserver: Peer URLs already exists"), "\(again.stderr)")

        let remove = try cluster.etcdctl("member", "remove", id)
        #expect(remove.stdout.contains("removed from cluster"), "\(remove.stdout)\(remove.stderr)")
        // Asked of the members that remain: the removed one never applies
        // its own removal, and refuses writes ("no leader") from the moment
        // its peers refuse it until it stops.
        let remaining = (0..<3).map { cluster.endpoint($0) }.joined(separator: ",")
        for i in 0..<3 {
            let removed = try Self.awaitMembers(cluster, ["m1", "m2", "m3"], endpoints: cluster.endpoint(i))
            #expect(Self.names(removed) == ["m1", "m2", "m3"], "member \(i): \(removed.stdout)")
        }
        let final = try cluster.etcdctl("put", "final", "3", endpoints: remaining)
        #expect(final.stdout == "OK\n", "\(final.stderr)")
        // The removed member stops itself, cleanly.
        let stopped = Date().addingTimeInterval(10)
        while cluster.members[joined].process?.isRunning == true && Date() < stopped { usleep(100_000) }
        let removedProcess = try #require(cluster.members[joined].process)
        try #require(!removedProcess.isRunning, "the removed member is still running\n\(cluster.logs())")
        #expect(removedProcess.terminationStatus == 0)
        let unknown = try cluster.etcdctl("member", "remove", id)
        #expect(unknown.stderr.contains("etcdserver: member not found"), "\(unknown.stderr)")
    }

    /// As etcd: a member removed, then added back at the same peer URL, gets
    /// a new ID (`member add` mixes in the time), joins under it (it learns
    /// the ID from the members, by its peer URL), and keeps it across a
    /// restart, though its flags derive another.
    @Test func aRemovedMemberAddedBackAtItsURLJoinsUnderANewID() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for i in 0..<20 { try cluster.etcdctl("put", "before/\(i)", "\(i)") }
        func memberID(_ i: Int) throws -> String {
            let status = try cluster.etcdctl("endpoint", "status", "-w", "fields", endpoints: cluster.endpoint(i))
            let line = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("\"MemberID\"") }, "\(status.stdout)\(status.stderr)")
            return String(try #require(UInt64(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))), radix: 16)
        }
        let old = try memberID(2)
        let remove = try cluster.etcdctl("member", "remove", old, endpoints: cluster.endpoint(0))
        #expect(remove.stdout.contains("removed from cluster"), "\(remove.stdout)\(remove.stderr)")
        let stopped = Date().addingTimeInterval(10)
        while cluster.members[2].process?.isRunning == true && Date() < stopped { usleep(100_000) }

        let add = try cluster.etcdctl("member", "add", "m3", "--peer-urls=http://127.0.0.1:\(cluster.members[2].peerPort)", endpoints: cluster.endpoint(0))
        #expect(add.status == 0, "\(add.stderr)")
        let new = try #require(add.stdout.split(separator: " ").dropFirst().first.map(String.init), "\(add.stdout)")
        #expect(new != old, "the same URL came back under the removed ID")
        try cluster.rejoin(2)
        let deadline = Date().addingTimeInterval(20)
        var read = TestCluster.Output(status: 1, stdout: "", stderr: "")
        repeat {
            usleep(200_000)
            read = try cluster.etcdctl("get", "before/", "--prefix", "--consistency=s", "--keys-only", endpoints: cluster.endpoint(2))
        } while read.stdout.split(separator: "\n").count < 20 && Date() < deadline
        #expect(read.stdout.split(separator: "\n").count == 20, "\(read.stdout)\(read.stderr)\n\(cluster.logs())")
        #expect(try memberID(2) == new)
        let members = try Self.awaitMembers(cluster, ["m1", "m2", "m3"])
        #expect(Self.names(members) == ["m1", "m2", "m3"] && members.stdout.contains(new), "\(members.stdout)")
        #expect(try cluster.etcdctl("put", "after", "3", endpoints: cluster.endpoint(2)).stdout == "OK\n")

        // Restarted, it is still the member the cluster added.
        cluster.kill(2)
        try cluster.start(2)
        let back = Date().addingTimeInterval(20)
        var put = TestCluster.Output(status: 1, stdout: "", stderr: "")
        repeat {
            usleep(200_000)
            put = try cluster.etcdctl("put", "restarted", "3", endpoints: cluster.endpoint(2))
        } while put.status != 0 && Date() < back
        #expect(put.stdout == "OK\n", "\(put.stderr)\n\(cluster.logs().suffix(3000))")
        #expect(try memberID(2) == new)
    }
}
