import Foundation
import Testing

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
        #expect(list.allSatisfy { (($0["Status"] as? [String: Any])?["version"] as? String) == "3.4.0" })

        let hashes = try cluster.etcdctl("endpoint", "hashkv", "-w", "json")
        let hashList = try JSONSerialization.jsonObject(with: Data(hashes.stdout.utf8)) as? [[String: Any]] ?? []
        let values = Set(hashList.compactMap { (($0["HashKV"] as? [String: Any])?["hash"] as? NSNumber)?.uint32Value })
        #expect(hashList.count == 3 && values.count == 1, "\(hashes.stdout)")

        let defrag = try cluster.etcdctl("defrag")
        #expect(defrag.stdout.components(separatedBy: "Finished defragmenting etcd member").count - 1 == 3, "\(defrag.stdout)\(defrag.stderr)")
        #expect(try cluster.etcdctl("get", "a").stdout == "a\n1\n")
        let alarms = try cluster.etcdctl("alarm", "list")
        #expect(alarms.status == 0 && alarms.stdout.isEmpty)
    }

    @Test func snapshotSaveStreamsAVerifiableCopy() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for i in 0..<200 { try cluster.etcdctl("put", "snap/\(i)", String(repeating: "x", count: 100)) }
        let path = cluster.directory + "/backup.db"
        let save = try cluster.etcdctl("snapshot", "save", path, endpoints: cluster.endpoint(1))
        #expect(save.status == 0, "\(save.stderr)")
        #expect(save.stdout == "Snapshot saved at \(path)\n", "\(save.stdout)\(save.stderr)")
        // etcdctl keeps what it received: a whole LMDB file (page-aligned) and
        // the 32-byte SHA-256 of it, which must match.
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 20_000 && size % 4096 == 32, "snapshot file of \(size) bytes")
        let check = try TestCluster.run("/usr/bin/env", ["python3", "-c",
            "import hashlib,sys; d=open(sys.argv[1],'rb').read(); print(hashlib.sha256(d[:-32]).digest()==d[-32:])", path], timeout: 30)
        #expect(check.stdout == "True\n", "\(check.stdout)\(check.stderr)")
        #expect(try cluster.etcdctl("get", "snap/7").stdout == "snap/7\n\(String(repeating: "x", count: 100))\n")
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
        }
        #expect(try cluster.etcdctl("get", "big/0", "--keys-only").stdout == "big/0\n\n")
        #expect(try cluster.etcdctl("del", "big/", "--prefix").status == 0)
        let revision = try #require(try cluster.etcdctl("get", "big/0", "-w", "fields").stdout
            .split(separator: "\n").first { $0.hasPrefix("\"Revision\"") }.flatMap { Int($0.split(separator: " ").last ?? "") })
        #expect(try cluster.etcdctl("compact", "\(revision)", "--physical").status == 0)
        #expect(try cluster.etcdctl("defrag").status == 0)
        let disarm = try cluster.etcdctl("alarm", "disarm")
        #expect(disarm.status == 0, "\(disarm.stderr)")
        #expect(try cluster.etcdctl("alarm", "list").stdout == "")
        #expect(try cluster.etcdctl("put", "small", "x").stdout == "OK\n")
    }
}
