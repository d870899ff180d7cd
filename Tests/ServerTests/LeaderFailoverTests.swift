import Foundation
import Testing

/// SIGKILL the leader under a write load from several clients: the cluster
/// elects a new leader and keeps serving; once the killed member is back,
/// every acknowledged write is readable from every member and the members'
/// HashKV agree.
@Suite(.serialized) struct LeaderFailoverTests {
    static let load = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/etcd3_load.py").path

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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.load, "8", "6"] + (0..<3).map(cluster.endpoint)
        let out = Pipe()
        process.standardOutput = out
        nonisolated(unsafe) var output = Data()
        let reader = DispatchGroup()
        reader.enter()
        DispatchQueue.global().async { output = out.fileHandleForReading.readDataToEndOfFile(); reader.leave() }
        try process.run()
        Thread.sleep(forTimeInterval: 2)
        let killedAt = Date().timeIntervalSince1970
        cluster.kill(leader)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        reader.wait()
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        let acks = lines.filter { $0.hasPrefix("ack ") }.map { $0.split(separator: " ") }
        let acked = Dictionary(uniqueKeysWithValues: acks.map { (String($0[1]), String($0[2])) })
        let afterKill = acks.filter { Double($0[3])! > killedAt + 0.1 }.count
        print("failover: \(acked.count) writes acknowledged, \(afterKill) after the leader was killed")
        #expect(lines.last?.hasPrefix("done ") == true, "load generator did not finish")
        #expect(acked.count > 100, "only \(acked.count) writes acknowledged")
        #expect(afterKill > 50, "the cluster served only \(afterKill) writes after the leader was killed\n\(cluster.logs())")

        // A new leader among the survivors.
        let survivors = (0..<3).filter { $0 != leader }
        let newLeader = Self.status(cluster, survivors[0])?.leader ?? 0
        #expect(newLeader != 0 && newLeader != leaderID)

        // The killed member comes back and catches up.
        try cluster.start(leader)
        let catchUp = Date().addingTimeInterval(30)
        var revisions: [Int64] = []
        repeat {
            usleep(200_000)
            try cluster.etcdctl("put", "ballot-e2e-barrier", "1")
            revisions = (0..<3).map { Self.status(cluster, $0)?.revision ?? -1 }
        } while Set(revisions).count != 1 && Date() < catchUp
        #expect(Set(revisions).count == 1, "members' revisions differ: \(revisions)\n\(cluster.logs())")

        // Every acknowledged write, read from every member alone (serializable).
        for i in 0..<3 {
            let read = try cluster.etcdctl("get", "load/", "--prefix", "--consistency=s", "-w", "json", endpoints: cluster.endpoint(i), timeout: 30)
            let object = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
            var stored: [String: String] = [:]
            for kv in (object?["kvs"] as? [[String: Any]]) ?? [] {
                let key = String(decoding: Data(base64Encoded: kv["key"] as? String ?? "") ?? Data(), as: UTF8.self)
                stored[key] = String(decoding: Data(base64Encoded: kv["value"] as? String ?? "") ?? Data(), as: UTF8.self)
            }
            let missing = acked.filter { stored[$0.key] != $0.value }
            #expect(missing.isEmpty, "member \(i) lacks \(missing.count) acknowledged writes, e.g. \(missing.first.map { "\($0)" } ?? "")")
        }
        // Same history on every member: HashKV at the same revision agrees.
        let revision = revisions[0]
        let hashes = try (0..<3).map { i -> String in
            let out = try cluster.etcdctl("endpoint", "hashkv", "--rev=\(revision)", "-w", "json", endpoints: cluster.endpoint(i))
            let list = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]]
            return "\(((list?.first?["HashKV"] as? [String: Any])?["hash"] as? NSNumber)?.uint32Value ?? 0)"
        }
        #expect(Set(hashes).count == 1 && hashes[0] != "0", "HashKV differs: \(hashes)")
    }
}
