import Foundation
import Testing

/// Every member of a cluster runs the same consensus engine (`--engine`):
/// a member started with the other is refused by its peers, with a message
/// that says so, and a data directory one engine wrote is refused by the other.
@Suite(.serialized) struct EngineTests {
    @Test func aMemberRunningTheOtherEngineIsRefusedByItsPeers() throws {
        let cluster = try TestCluster(engine: "raft") { $0.memberEngine[0] = "paxos" }
        defer { cluster.cleanUp() }
        // The two Raft members are a quorum; the Paxos one never joins them.
        let put = try cluster.etcdctl("put", "k", "v", endpoints: cluster.endpoint(1))
        #expect(put.status == 0, "\(put.stderr)")
        let alone = try cluster.etcdctl("put", "k", "w", endpoints: cluster.endpoint(0), timeout: 20)
        #expect(alone.status != 0, "the member running the other engine must not serve writes: \(alone.stdout)")
        let deadline = Date().addingTimeInterval(20)
        var logs = cluster.logs()
        while Date() < deadline && !(logs.contains("runs the raft engine, this member runs paxos") && logs.contains("runs the paxos engine, this member runs raft")) {
            usleep(200_000)
            logs = cluster.logs()
        }
        #expect(logs.contains("runs the paxos engine, this member runs raft: every member of a cluster runs the same --engine"),
                "the Raft members say why they refuse\n\(logs)")
        #expect(logs.contains("runs the raft engine, this member runs paxos"), "the Paxos member hears why it is refused\n\(logs)")
        let value = try cluster.etcdctl("get", "k", "--print-value-only", endpoints: cluster.endpoint(2))
        #expect(value.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "v")
    }

    @Test func aDataDirectoryIsRefusedByTheOtherEngine() throws {
        let cluster = try TestCluster(engine: "paxos")
        defer { cluster.cleanUp() }
        #expect(try cluster.etcdctl("put", "k", "v").status == 0)
        cluster.kill(2)
        cluster.memberEngine[2] = "raft"
        try cluster.start(2)
        let deadline = Date().addingTimeInterval(30)
        while cluster.members[2].process?.isRunning == true && Date() < deadline { usleep(100_000) }
        #expect(cluster.members[2].process?.isRunning == false, "a Raft member must not open a Paxos member's log")
        #expect(cluster.members[2].process?.terminationStatus != 0)
        let log = (try? String(contentsOfFile: cluster.members[2].log, encoding: .utf8)) ?? ""
        #expect(log.contains("written by the paxos engine: start it with --engine paxos"), "\(log)")
        // Started with its own engine again, it catches up.
        cluster.memberEngine[2] = nil
        try cluster.start(2)
        #expect(try cluster.etcdctl("put", "k2", "v2").status == 0)
        var caughtUp = false
        for _ in 0..<100 where !caughtUp {
            caughtUp = (try? cluster.etcdctl("get", "k2", "--print-value-only", "--consistency=s", endpoints: cluster.endpoint(2)))?
                .stdout.contains("v2") == true
            if !caughtUp { usleep(100_000) }
        }
        #expect(caughtUp)
    }
}
