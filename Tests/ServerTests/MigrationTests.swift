import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// etcd → Ballot, as an operator moves: Debian's etcd 3.4 holds data with
/// history (several versions, deletions, a lease, a large value, a
/// compaction); its backup, restored by `etcdctl snapshot restore` for each
/// member, or a stopped etcd member's own directory, starts Ballot, which
/// then serves the same keys under the same revisions. A Ballot backup
/// restores into Ballot the same way. Directories that are not whole or
/// not this member's are refused before anything is written.
@Suite(.serialized) struct MigrationTests {
    /// One etcd member on the given ports, stopped by PID.
    final class Etcd {
        let process = Process()
        let endpoint: String

        init(name: String, dataDir: String, clientPort: Int, peerPort: Int, token: String = "e2e") throws {
            endpoint = "127.0.0.1:\(clientPort)"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
            process.arguments = [
                "--name", name, "--data-dir", dataDir,
                "--listen-client-urls", "http://127.0.0.1:\(clientPort)", "--advertise-client-urls", "http://127.0.0.1:\(clientPort)",
                "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
                "--initial-cluster", "\(name)=http://127.0.0.1:\(peerPort)", "--initial-cluster-token", token,
            ]
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            while try ctl("endpoint", "health").status != 0 {
                guard Date() < deadline else { throw TestFailure("etcd did not become healthy") }
                usleep(200_000)
            }
        }

        deinit { stop() }

        @discardableResult
        func ctl(_ arguments: String...) throws -> TestCluster.Output {
            try TestCluster.run("/usr/bin/etcdctl", ["--endpoints", endpoint] + arguments, environment: ["ETCDCTL_API": "3"], timeout: 30)
        }

        /// SIGTERM (etcd commits its backend as it stops), SIGKILL after a bound.
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        /// Versions, deletions, a lease, a value past a page, a compaction;
        /// returns the lease's ID.
        func fill() throws -> Int64 {
            let load = try TestCluster.run("/usr/bin/env", ["python3", "-c", """
                import sys, etcd3
                c = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]), timeout=20)
                for i in range(1200): c.put("m/%05d" % i, "v%d" % i)
                for i in range(0, 1200, 3): c.put("m/%05d" % i, "w%d" % i)
                c.delete("m/00001")
                c.delete_prefix("m/0002")
                lease = c.lease(600)
                c.put("m/leased", "L", lease=lease)
                c.put("m/big", "B" * 20000)
                print(lease.id)
                """, String(endpoint.split(separator: ":")[1])], timeout: 120)
            guard load.status == 0, let lease = Int64(load.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw TestFailure("filling etcd failed: \(load.stderr)")
            }
            guard try ctl("compact", "700").status == 0 else { throw TestFailure("etcd did not compact") }
            return lease
        }
    }

    /// `get m/ --prefix -w json`: the keys with their revisions and the
    /// store's revision (the header's other fields name the cluster).
    static func dump(_ output: TestCluster.Output) throws -> (kvs: [NSDictionary], count: Int, revision: Int64) {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any], "\(output.stdout)\(output.stderr)")
        let header = try #require(json["header"] as? [String: Any])
        return ((json["kvs"] as? [[String: Any]] ?? []).map { $0 as NSDictionary }, (json["count"] as? NSNumber)?.intValue ?? 0,
                (header["revision"] as? NSNumber)?.int64Value ?? 0)
    }

    static func restore(_ backup: String, into cluster: TestCluster, token: String = "e2e") throws {
        for m in cluster.members {
            let peer = "http://127.0.0.1:\(m.peerPort)"
            let restore = try TestCluster.run("/usr/bin/etcdctl", [
                "snapshot", "restore", backup, "--data-dir", m.dataDir, "--name", m.name, "--initial-cluster", cluster.cluster,
                "--initial-cluster-token", token, "--initial-advertise-peer-urls", peer,
            ], environment: ["ETCDCTL_API": "3"], timeout: 60)
            guard restore.status == 0 else { throw TestFailure("etcdctl snapshot restore failed: \(restore.stderr)") }
        }
    }

    /// What a member serves after taking the data over, against what etcd served.
    static func expectSame(_ cluster: TestCluster, as reference: (kvs: [NSDictionary], count: Int, revision: Int64), lease: Int64) throws {
        for i in cluster.members.indices {
            let got = try dump(cluster.etcdctl("get", "m/", "--prefix", "-w", "json", endpoints: cluster.endpoint(i)))
            #expect(got.count == reference.count && got.kvs == reference.kvs, "member \(i + 1) serves other keys or revisions")
            // The readiness write of TestCluster came next.
            #expect(got.revision == reference.revision + 1, "member \(i + 1): revision \(got.revision), etcd's was \(reference.revision)")
        }
        let ttl = try cluster.etcdctl("lease", "timetolive", String(lease, radix: 16))
        #expect(ttl.stdout.contains("granted with TTL(600s)"), "\(ttl.stdout)\(ttl.stderr)")
        let compacted = try cluster.etcdctl("get", "m/00003", "--rev", "600")
        #expect(compacted.stderr.contains("required revision has been compacted"), "\(compacted.stdout)\(compacted.stderr)")
        let old = try cluster.etcdctl("get", "m/00004", "--rev", "\(reference.revision - 500)", "--print-value-only")
        #expect(old.stdout == "v4\n", "history after the compaction came along: \(old.stdout)\(old.stderr)")
        let put = try dump(cluster.etcdctl("put", "m/new", "1", "-w", "json"))
        #expect(put.revision == reference.revision + 2)
        let hashes = try cluster.hashKVs()
        #expect(hashes.count == cluster.members.count && Set(hashes).count == 1, "every member holds the same history: \(hashes)")
    }

    /// A new temporary directory for a test's etcd and backups.
    static func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "ballot-migration-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func anEtcdBackupRestoredForEveryMemberStartsABallotCluster() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = try TestCluster.freePorts(2)
        let etcd = try Etcd(name: "e1", dataDir: directory + "/e1", clientPort: ports[0], peerPort: ports[1])
        let lease = try etcd.fill()
        let reference = try Self.dump(try etcd.ctl("get", "m/", "--prefix", "-w", "json"))
        #expect(reference.count == 1200 - 11 + 2)
        let backup = directory + "/etcd.db"
        #expect(try etcd.ctl("snapshot", "save", backup).status == 0)
        etcd.stop()

        let cluster = try TestCluster(size: 3) { try Self.restore(backup, into: $0) }
        defer { cluster.cleanUp() }
        try Self.expectSame(cluster, as: reference, lease: lease)
        #expect(cluster.logs().contains("imported the etcd data"))

        // Ballot → Ballot: its own backup, restored by `ballot snapshot restore`.
        let ballotBackup = directory + "/ballot.db"
        #expect(try cluster.etcdctl("snapshot", "save", ballotBackup, endpoints: cluster.endpoint(1)).status == 0)
        var tampered = try Data(contentsOf: URL(fileURLWithPath: ballotBackup))
        tampered[tampered.count / 2] ^= 1
        try tampered.write(to: URL(fileURLWithPath: directory + "/tampered.db"))
        let refused = try TestCluster.run(TestCluster.binary, ["snapshot", "restore", directory + "/tampered.db", "--data-dir", directory + "/t"], timeout: 30)
        #expect(refused.status != 0 && refused.stderr.contains("expected sha256"), "\(refused.stdout)\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/t"), "a refused restore leaves nothing behind")
        let second = try TestCluster(size: 1) { cluster in
            let restore = try TestCluster.run(TestCluster.binary, ["snapshot", "restore", ballotBackup, "--data-dir", cluster.members[0].dataDir], timeout: 60)
            guard restore.status == 0 else { throw TestFailure("ballot snapshot restore: \(restore.stdout)\(restore.stderr)") }
        }
        defer { second.cleanUp() }
        let got = try Self.dump(second.etcdctl("get", "m/", "--prefix", "-w", "json"))
        let before = try Self.dump(cluster.etcdctl("get", "m/", "--prefix", "-w", "json"))
        #expect(got.kvs == before.kvs && got.revision == before.revision + 1)
    }

    @Test func aStoppedEtcdMembersDirectoryIsTakenOverInPlace() throws {
        nonisolated(unsafe) var lease: Int64 = 0
        nonisolated(unsafe) var reference: (kvs: [NSDictionary], count: Int, revision: Int64) = ([], 0, 0)
        // etcd runs with the flags Ballot then starts with, on the same directory.
        let cluster = try TestCluster(size: 1) { cluster in
            let m = cluster.members[0]
            let etcd = try Etcd(name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort)
            lease = try etcd.fill()
            reference = try Self.dump(try etcd.ctl("get", "m/", "--prefix", "-w", "json"))
            etcd.stop()
        }
        defer { cluster.cleanUp() }
        try Self.expectSame(cluster, as: reference, lease: lease)

        // A member added later gets the imported data (no log entry holds
        // it: the leader sends a snapshot), and joins the same history.
        let ports = try TestCluster.freePorts(2)
        let add = try cluster.etcdctl("member", "add", "m2", "--peer-urls=http://127.0.0.1:\(ports[0])")
        #expect(add.status == 0, "\(add.stderr)")
        let joined = try cluster.startJoining(name: "m2", peerPort: ports[0], clientPort: ports[1])
        let deadline = Date().addingTimeInterval(30)
        var got = try Self.dump(cluster.etcdctl("get", "m/", "--prefix", "-w", "json", "--consistency=s", endpoints: cluster.endpoint(joined)))
        while got.count < reference.count && Date() < deadline {
            usleep(200_000)
            got = (try? Self.dump(cluster.etcdctl("get", "m/", "--prefix", "-w", "json", "--consistency=s", endpoints: cluster.endpoint(joined)))) ?? got
        }
        let leader = try Self.dump(cluster.etcdctl("get", "m/", "--prefix", "-w", "json", endpoints: cluster.endpoint(0)))
        #expect(got.kvs == leader.kvs && got.count == leader.count, "the added member serves \(got.count) keys of \(leader.count)\n\(cluster.logs().suffix(3000))")
    }

    @Test func aDirectoryMadeForAnotherMemberIsRefusedUntouched() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = try TestCluster.freePorts(2)
        let etcd = try Etcd(name: "e1", dataDir: directory + "/e1", clientPort: ports[0], peerPort: ports[1])
        #expect(try etcd.ctl("put", "k", "v").status == 0)
        let backup = directory + "/etcd.db"
        #expect(try etcd.ctl("snapshot", "save", backup).status == 0)
        etcd.stop()

        // Restored under another cluster token than the member starts with.
        let failure = #expect(throws: TestFailure.self) {
            _ = try TestCluster(size: 1) { cluster in
                try Self.restore(backup, into: cluster, token: "another-token")
                let run = try TestCluster.run(TestCluster.binary, cluster.arguments(0), timeout: 30)
                let dataDir = cluster.members[0].dataDir
                let written = ["ballot.version", "db", "wal"].filter { FileManager.default.fileExists(atPath: "\(dataDir)/\($0)") }
                throw TestFailure("status \(run.status), wrote \(written): \(run.stdout)\(run.stderr)")
            }
        }
        let message = failure.map { "\($0)" } ?? ""
        #expect(message.contains("status 2, wrote []") && message.contains("but these flags found member"), "\(message)")
    }
}
