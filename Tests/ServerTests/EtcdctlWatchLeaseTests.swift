import Foundation
import Testing

/// etcdctl's watch and lease commands against a real cluster.
@Suite(.serialized) struct EtcdctlWatchLeaseTests {
    /// Runs `etcdctl watch …` in the background until it printed `lines` lines.
    static func watch(_ cluster: TestCluster, _ arguments: [String], endpoint: Int, until lines: Int,
                      during action: () throws -> Void) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        process.arguments = ["--endpoints=\(cluster.endpoint(endpoint))", "watch"] + arguments
        process.environment = ["ETCDCTL_API": "3"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.7)  // the watch is created before the writes
        try action()
        var text = ""
        let deadline = Date().addingTimeInterval(15)
        let handle = out.fileHandleForReading
        let flags = fcntl(handle.fileDescriptor, F_GETFL)
        _ = fcntl(handle.fileDescriptor, F_SETFL, flags | O_NONBLOCK)
        while text.split(separator: "\n", omittingEmptySubsequences: false).count <= lines && Date() < deadline {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = read(handle.fileDescriptor, &buffer, buffer.count)
            if n > 0 { text += String(decoding: buffer[..<n], as: UTF8.self) } else { usleep(20_000) }
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).prefix(lines).map(String.init)
    }

    @Test func watchSeesPutsAndDeletesWithPrevKV() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "w/a", "0")
        // A linearizable read through member 1 makes it apply the put first; a
        // watch from "now" on a member that lagged would (rightly) include it.
        #expect(try cluster.etcdctl("get", "w/a", endpoints: cluster.endpoint(1)).stdout == "w/a\n0\n")
        // Watch on a follower or the leader alike; write through another member.
        let lines = try Self.watch(cluster, ["w/", "--prefix", "--prev-kv"], endpoint: 1, until: 12) {
            try cluster.etcdctl("put", "w/a", "1", endpoints: cluster.endpoint(0))
            try cluster.etcdctl("put", "other", "x", endpoints: cluster.endpoint(0))
            try cluster.etcdctl("put", "w/b", "2", endpoints: cluster.endpoint(2))
            try cluster.etcdctl("del", "w/a", endpoints: cluster.endpoint(0))
        }
        #expect(lines == ["PUT", "w/a", "0", "w/a", "1", "PUT", "w/b", "2", "DELETE", "w/a", "1", "w/a"], "\(lines)")
    }

    @Test func watchFromAnOldRevisionReplaysHistoryAndACompactedOneIsRefused() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        var revisions: [Int64] = []
        for value in ["1", "2", "3"] {
            // As an etcd client would, retry a put that failed for want of a
            // leader (a loaded CI machine can trigger an election); the
            // revision comes from the put that succeeded.
            var put = try cluster.etcdctl("put", "h", value, "-w", "json")
            for _ in 0..<2 where put.status != 0 {
                print("put h=\(value) failed, retrying: \(put.stderr)")
                put = try cluster.etcdctl("put", "h", value, "-w", "json")
            }
            try #require(put.status == 0, "put h=\(value) failed: \(put.stderr)\n\(cluster.logs())")
            let object = try JSONSerialization.jsonObject(with: Data(put.stdout.utf8)) as? [String: Any]
            revisions.append(try #require(((object?["header"] as? [String: Any])?["revision"] as? NSNumber)?.int64Value))
        }
        let replay = try Self.watch(cluster, ["h", "--rev=\(revisions[1])"], endpoint: 0, until: 6) {}
        #expect(replay == ["PUT", "h", "2", "PUT", "h", "3"], "\(replay)")
        let compact = try cluster.etcdctl("compact", "\(revisions[2])")
        try #require(compact.status == 0, "compact failed: \(compact.stderr)")
        let refused = try TestCluster.run("/usr/bin/etcdctl", ["--endpoints=\(cluster.endpoint(0))", "watch", "h", "--rev=\(revisions[0])"],
                                          environment: ["ETCDCTL_API": "3"], timeout: 10)
        #expect(refused.stdout.contains("compacted") || refused.stderr.contains("required revision has been compacted"),
                "\(refused.stdout)\(refused.stderr)")
    }

    @Test func leaseGrantKeepAliveTimeToLiveRevoke() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let grant = try cluster.etcdctl("lease", "grant", "60")
        let id = try #require(grant.stdout.split(separator: " ").dropFirst().first.map(String.init), "\(grant.stdout)\(grant.stderr)")
        #expect(grant.stdout == "lease \(id) granted with TTL(60s)\n")
        #expect(try cluster.etcdctl("put", "leased", "v", "--lease=\(id)").stdout == "OK\n")
        #expect(try cluster.etcdctl("lease", "list").stdout == "found 1 leases\n\(id)\n")
        // Keep-alive and time-to-live through a follower as well as the leader.
        for i in 0..<3 {
            let alive = try cluster.etcdctl("lease", "keep-alive", "--once", id, endpoints: cluster.endpoint(i))
            #expect(alive.stdout == "lease \(id) keepalived with TTL(60)\n", "member \(i): \(alive.stdout)\(alive.stderr)")
            let ttl = try cluster.etcdctl("lease", "timetolive", id, "--keys", endpoints: cluster.endpoint(i))
            #expect(ttl.stdout.hasPrefix("lease \(id) granted with TTL(60s), remaining(") && ttl.stdout.hasSuffix("s), attached keys([leased])\n"),
                    "member \(i): \(ttl.stdout)\(ttl.stderr)")
        }
        #expect(try cluster.etcdctl("lease", "revoke", id).stdout == "lease \(id) revoked\n")
        #expect(try cluster.etcdctl("get", "leased").stdout == "")
        #expect(try cluster.etcdctl("lease", "timetolive", id).stdout == "lease \(id) already expired\n")
        let unknown = try cluster.etcdctl("lease", "revoke", id)
        #expect(unknown.stderr.contains("etcdserver: requested lease not found"))
        let badPut = try cluster.etcdctl("put", "k", "v", "--lease=1234abcd")
        #expect(badPut.stderr.contains("etcdserver: requested lease not found"))
    }

    @Test func anExpiredLeaseTakesItsKeysWithIt() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        // The shortest TTL is 1.5 election timeouts rounded up: 1 s here.
        let grant = try cluster.etcdctl("lease", "grant", "1")
        let id = try #require(grant.stdout.split(separator: " ").dropFirst().first.map(String.init))
        try cluster.etcdctl("put", "ephemeral", "v", "--lease=\(id)")
        try cluster.etcdctl("put", "durable", "v")
        #expect(try cluster.etcdctl("get", "ephemeral").stdout == "ephemeral\nv\n")
        let deadline = Date().addingTimeInterval(10)
        while try cluster.etcdctl("get", "ephemeral").stdout != "" && Date() < deadline { usleep(200_000) }
        #expect(try cluster.etcdctl("get", "ephemeral").stdout == "")
        #expect(try cluster.etcdctl("get", "durable").stdout == "durable\nv\n")
        #expect(try cluster.etcdctl("lease", "list").stdout == "found 0 leases\n")
    }
}
