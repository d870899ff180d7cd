import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// etcdctl's operator commands: members, endpoint health and status,
/// hashes and defragmentation.
@Suite(.serialized) struct EtcdctlMaintenanceTests {
    @Test func membersStatusHealthHashAndDefrag() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        // Members publish their names and client URLs through the log once
        // they start (as etcd's do); wait for all three.
        var members = try cluster.etcdctl("member", "list", endpoints: cluster.endpoint(0))
        let deadline = Date().addingTimeInterval(10)
        while members.stdout.contains(", , ") && Date() < deadline {
            usleep(100_000)
            members = try cluster.etcdctl("member", "list", endpoints: cluster.endpoint(0))
        }
        let lines = members.stdout.split(separator: "\n").sorted { $0.components(separatedBy: ", ")[2] < $1.components(separatedBy: ", ")[2] }
        #expect(lines.count == 3, "\(members.stdout)\(members.stderr)")
        for (i, line) in lines.enumerated() {
            // id, status, name, peer URLs, client URLs, is learner
            let fields = line.components(separatedBy: ", ")
            #expect(fields.count == 6, "\(line)")
            #expect(fields[1] == "started" && fields[2] == "m\(i + 1)" && fields[5] == "false", "\(line)")
            #expect(fields[3] == "http://127.0.0.1:\(cluster.members[i].peerPort)", "\(line)")
            #expect(fields[4] == "http://127.0.0.1:\(cluster.members[i].clientPort)", "\(line)")
        }

        let health = try cluster.etcdctl("endpoint", "health")
        #expect(health.status == 0)
        // etcdctl 3.4 writes health lines to stderr.
        #expect(health.stderr.components(separatedBy: "is healthy: successfully committed proposal").count - 1 == 3, "\(health.stdout)\(health.stderr)")

        try cluster.etcdctl("put", "a", "1")
        let status = try cluster.etcdctl("endpoint", "status", "-w", "json")
        let list = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 3)
        let leaders = Set(list.compactMap { (($0["Status"] as? [String: Any])?["leader"] as? NSNumber)?.uint64Value })
        let memberIDs = Set(list.compactMap { ((($0["Status"] as? [String: Any])?["header"] as? [String: Any])?["member_id"] as? NSNumber)?.uint64Value })
        #expect(leaders.count == 1 && memberIDs.count == 3 && memberIDs.isSuperset(of: leaders), "\(status.stdout)")
        #expect(list.allSatisfy { (($0["Status"] as? [String: Any])?["version"] as? String) == "3.4.23" })

        let hashes = try cluster.hashKVs()
        #expect(hashes.count == 3 && Set(hashes).count == 1, "\(hashes)")

        let defrag = try cluster.etcdctl("defrag")
        #expect(defrag.stdout.components(separatedBy: "Finished defragmenting etcd member").count - 1 == 3, "\(defrag.stdout)\(defrag.stderr)")
        #expect(try cluster.etcdctl("get", "a").stdout == "a\n1\n")
        let alarms = try cluster.etcdctl("alarm", "list")
        #expect(alarms.status == 0 && alarms.stdout.isEmpty)
    }

    /// A snapshot is a bbolt file in etcd's layout: etcdctl checks its hash,
    /// `snapshot status` reads it (bbolt's own consistency check first),
    /// `snapshot restore` turns it into an etcd data directory, and Debian's
    /// etcd started on that directory serves what Ballot stored: a backup
    /// taken from Ballot restores into etcd.
    @Test func snapshotIsAnEtcdBackupThatEtcdRestores() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        // Enough versions for two levels of branch pages, a value longer
        // than a page (overflow pages), a deletion, a lease and a compaction.
        let load = try TestCluster.run("/usr/bin/env", ["python3", "-c", """
            import sys, etcd3
            c = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]), timeout=20)
            for i in range(3000): c.put("bulk/%05d" % i, "v" * 300)
            c.put("big", "B" * 20000)
            c.delete("bulk/00000")
            lease = c.lease(600)
            c.put("leased", "L", lease=lease)
            print(lease.id)
            """, "\(cluster.members[0].clientPort)"], timeout: 120)
        #expect(load.status == 0, "\(load.stderr)")
        let leaseID = try #require(Int64(load.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(try cluster.etcdctl("compact", "100").status == 0)
        let header = try cluster.etcdctl("get", "big", "-w", "json").stdout
        let revision = try #require(((try JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any])?["header"] as? [String: Any])?["revision"] as? NSNumber).int64Value

        let path = cluster.directory + "/backup.db"
        let save = try cluster.etcdctl("snapshot", "save", path, endpoints: cluster.endpoint(1))
        #expect(save.stdout == "Snapshot saved at \(path)\n", "\(save.stdout)\(save.stderr)")
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 1_000_000 && size % 4096 == 32, "a bbolt file and etcd's 32-byte SHA-256: \(size) bytes")

        let status = try TestCluster.run("/usr/bin/etcdctl", ["snapshot", "status", path, "-w", "json"], environment: ["ETCDCTL_API": "3"], timeout: 30)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status.stdout)\(status.stderr)")
        #expect((fields["revision"] as? NSNumber)?.int64Value == revision)
        // The key bucket keeps the compacted history's last versions and
        // every later one; the other buckets add a handful.
        let totalKey = (fields["totalKey"] as? NSNumber)?.intValue ?? 0
        #expect(totalKey > 3_000 && totalKey < 3_030, "\(fields)")
        #expect((fields["totalSize"] as? NSNumber)?.intValue == size - 32)

        // etcd takes it over.
        let ports = try TestCluster.freePorts(2)
        let etcdDir = cluster.directory + "/restored.etcd"
        let peer = "http://127.0.0.1:\(ports[1])"
        let restore = try TestCluster.run("/usr/bin/etcdctl", [
            "snapshot", "restore", path, "--data-dir", etcdDir, "--name", "e1",
            "--initial-cluster", "e1=\(peer)", "--initial-advertise-peer-urls", peer,
        ], environment: ["ETCDCTL_API": "3"], timeout: 60)
        #expect(restore.status == 0 && (restore.stdout + restore.stderr).contains("added member"), "\(restore.stdout)\(restore.stderr)")
        let etcd = Process()
        etcd.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        etcd.arguments = ["--name", "e1", "--data-dir", etcdDir, "--listen-client-urls", "http://127.0.0.1:\(ports[0])",
                          "--advertise-client-urls", "http://127.0.0.1:\(ports[0])", "--listen-peer-urls", peer,
                          "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=\(peer)"]
        let etcdLog = FileHandle(forWritingAtPath: "/dev/null")
        etcd.standardOutput = etcdLog
        etcd.standardError = etcdLog
        try etcd.run()
        defer {
            kill(etcd.processIdentifier, SIGKILL)
            etcd.waitUntilExit()
        }
        let endpoint = "127.0.0.1:\(ports[0])"
        var big = TestCluster.Output(status: 1, stdout: "", stderr: "")
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            big = try cluster.etcdctl("get", "big", "--print-value-only", endpoints: endpoint)
            if big.status == 0 { break }
            usleep(200_000)
        }
        #expect(big.stdout == String(repeating: "B", count: 20000) + "\n", "\(big.stderr)")
        #expect(try cluster.etcdctl("get", "bulk/02999", "--print-value-only", endpoints: endpoint).stdout == String(repeating: "v", count: 300) + "\n")
        let keys = try cluster.etcdctl("get", "bulk/", "--prefix", "--keys-only", endpoints: endpoint).stdout
        #expect(keys.split(separator: "\n").count == 2999, "every key but the deleted one")
        #expect(try cluster.etcdctl("get", "bulk/00000", endpoints: endpoint).stdout == "", "the deletion came along")
        let leased = try cluster.etcdctl("get", "leased", "-w", "fields", endpoints: endpoint).stdout
        #expect(leased.contains("\"Lease\" : \(leaseID)"), "\(leased)")
        let ttl = try cluster.etcdctl("lease", "timetolive", String(leaseID, radix: 16), endpoints: endpoint)
        #expect(ttl.stdout.contains("granted with TTL(600s)"), "\(ttl.stdout)\(ttl.stderr)")
        let history = try cluster.etcdctl("get", "bulk/00050", "--rev", "50", endpoints: endpoint)
        #expect(history.stderr.contains("required revision has been compacted"), "the compaction came along: \(history.stdout)\(history.stderr)")
        #expect(try cluster.etcdctl("get", "bulk/00200", "--rev", "\(revision - 10)", "--print-value-only", endpoints: endpoint).status == 0)
    }
}

extension EtcdctlMaintenanceTests {
    /// etcd's NOSPACE behaviour: at the quota, writes fail and the alarm is
    /// raised on every member (through consensus); reads and deletes still
    /// work; after compaction, defragmentation and disarming, writes work again.
    @Test func quotaRaisesAReplicatedNospaceAlarm() throws {
        let cluster = try TestCluster(extraArguments: ["--quota-backend-bytes", "\(2 << 20)"])
        defer { cluster.cleanUp() }
        let value = String(repeating: "q", count: 100_000)
        var refused: TestCluster.Output?
        for i in 0..<200 {
            let put = try cluster.etcdctl("put", "big/\(i)", input: value)
            if put.status != 0 { refused = put; break }
        }
        let failure = try #require(refused, "200 puts of 100 kB never hit a 2 MiB quota")
        #expect(failure.stderr.contains("etcdserver: mvcc: database space exceeded"), "\(failure.stderr)")
        for i in 0..<3 {
            let alarms = try cluster.etcdctl("alarm", "list", endpoints: cluster.endpoint(i))
            #expect(alarms.stdout.hasSuffix("alarm:NOSPACE \n") || alarms.stdout.contains("alarm:NOSPACE"), "member \(i): \(alarms.stdout)")
            let put = try cluster.etcdctl("put", "small", "x", endpoints: cluster.endpoint(i))
            #expect(put.stderr.contains("database space exceeded"), "member \(i) accepted a write under the alarm")
            // etcd's /health: unhealthy under an alarm, unless the caller excludes it.
            #expect(try cluster.http(i, "/health", clientPort: true).stdout == "{\"health\":\"false\"}\n\n503")
            #expect(try cluster.http(i, "/health?exclude=NOSPACE", clientPort: true).stdout == "{\"health\":\"true\"}\n200")
        }
        #expect(try cluster.etcdctl("get", "big/0", "--keys-only").stdout == "big/0\n\n")
        #expect(try cluster.etcdctl("del", "big/", "--prefix").status == 0)
        let revision = try #require(try cluster.etcdctl("get", "big/0", "-w", "fields").stdout
            .split(separator: "\n").first { $0.hasPrefix("\"Revision\"") }.flatMap { Int($0.split(separator: " ").last ?? "") })
        #expect(try cluster.etcdctl("compact", "\(revision)", "--physical").status == 0)
        #expect(try cluster.etcdctl("defrag").status == 0)
        let disarm = try cluster.etcdctl("alarm", "disarm")
        #expect(disarm.status == 0, "\(disarm.stderr)")
        #expect(disarm.stdout.contains("alarm:NOSPACE"), "etcdctl prints the alarms it disarmed: \(disarm.stdout)")
        #expect(try cluster.etcdctl("alarm", "list").stdout == "")
        #expect(try cluster.etcdctl("put", "small", "x").stdout == "OK\n")
    }
}
