import Foundation
import Glibc
import Testing

/// A full disk (ENOSPC, on a size-limited tmpfs): the member stops, with
/// its log saying why and exit status 1, before it acknowledges what it
/// could not write; once there is room again it restarts with every
/// acknowledged write. (Needs root to mount the tmpfs, as CI has.)
@Suite(.serialized) struct DiskFaultTests {
    static func run(_ arguments: [String]) throws -> TestCluster.Output {
        try TestCluster.run(arguments[0], Array(arguments.dropFirst()), timeout: 30)
    }

    /// Python that leaves `c`, an etcd3 client of the member on `port`, once
    /// the member answers. It first waits for the port to accept, so that
    /// grpcio's channel never meets a refused connection: after one, grpcio
    /// backs off (1 s, 1.6 s, 2.6 s, ... between tries) and fails every call
    /// at once meanwhile, which on a loaded machine outlasts any fixed
    /// number of polls.
    static func connected(port: Int, seconds: Int = 90) -> String {
        """
        import socket, time
        deadline = time.time() + \(seconds)
        while True:
            try:
                socket.create_connection(("127.0.0.1", \(port)), timeout=1).close(); break
            except OSError:
                if time.time() > deadline: raise
                time.sleep(0.1)
        c = etcd3.client(port=\(port), timeout=5)
        while True:
            try:
                c.status(); break
            except Exception:
                if time.time() > deadline: raise
                time.sleep(0.2)
        """
    }

    @Test func aFullDiskStopsTheMemberAndLosesNothing() throws {
        let mount = NSTemporaryDirectory() + "ballot-enospc-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        // Room for the first WAL segment (64 MiB) and some 90 MB of values.
        let mounted = try Self.run(["/bin/mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", mount])
        try #require(mounted.status == 0, "mounting a tmpfs needs root: \(mounted.stderr)")
        defer {
            _ = try? Self.run(["/bin/umount", "-l", mount])
            try? FileManager.default.removeItem(atPath: mount)
        }
        let ports = try TestCluster.freePorts(2)
        let client = "http://127.0.0.1:\(ports[0])", peer = "http://127.0.0.1:\(ports[1])"
        func start(log: String) throws -> Process {
            let member = Process()
            member.executableURL = URL(fileURLWithPath: TestCluster.binary)
            member.arguments = ["--name", "m1", "--data-dir", "\(mount)/m1", "--listen-client-urls", client, "--advertise-client-urls", client,
                                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "m1=\(peer)"]
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            member.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            member.standardError = FileHandle(forWritingAtPath: log)
            try member.run()
            return member
        }
        let firstLog = NSTemporaryDirectory() + "ballot-enospc-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: firstLog) }
        let member = try start(log: firstLog)
        defer { if member.isRunning { kill(member.processIdentifier, SIGKILL) } }
        // Write 256 kB values until the member stops answering; count the acknowledged ones.
        let writer = """
            import etcd3, os, sys
            \(Self.connected(port: ports[0]))
            acked = 0
            for i in range(1000):
                try:
                    c.put(f"full/{i:04d}", os.urandom(256 * 1024))
                    acked = i + 1
                except Exception as e:
                    print(f"write {i}: {e!r}", file=sys.stderr)
                    break
            print(acked)
            """
        let written = try TestCluster.run("/usr/bin/env", ["python3", "-c", writer], timeout: 240)
        let acked = try #require(Int(written.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(written.stdout)\(written.stderr)")
        #expect(acked > 100, "the disk filled after \(acked) writes: \(written.stderr.suffix(1000))")
        let deadline = Date().addingTimeInterval(20)
        while member.isRunning && Date() < deadline { usleep(100_000) }
        try #require(!member.isRunning, "the member kept running on a full disk")
        #expect(member.terminationReason == .exit && member.terminationStatus == 1, "\(member.terminationReason) \(member.terminationStatus)")
        let log = (try? String(contentsOfFile: firstLog, encoding: .utf8)) ?? ""
        #expect(log.contains("stopping: the disk failed") && log.contains("No space left on device"), "\(log.suffix(2000))")

        // Room again: everything acknowledged is there, and the member writes.
        #expect(try Self.run(["/bin/mount", "-o", "remount,size=400m", mount]).status == 0)
        let secondLog = firstLog + ".2"
        defer { try? FileManager.default.removeItem(atPath: secondLog) }
        let restarted = try start(log: secondLog)
        defer {
            kill(restarted.processIdentifier, SIGKILL)
            restarted.waitUntilExit()
        }
        let check = """
            import etcd3
            \(Self.connected(port: ports[0]))
            keys = {m.key.decode() for _, m in c.get_prefix("full/", keys_only=True)}
            missing = [i for i in range(\(acked)) if f"full/{i:04d}" not in keys]
            c.put("after", "1")
            print(len(missing), c.get("after")[0].decode())
            """
        let checked = try TestCluster.run("/usr/bin/env", ["python3", "-c", check], timeout: 120)
        #expect(checked.stdout == "0 1\n", "missing acknowledged writes, then the new write: \(checked.stdout)\(checked.stderr)")
    }

    /// A failed fsync (injected: `BALLOT_FAULT_WAL_SYNC_FAILS_AFTER`, as no
    /// kernel fails one on demand; the injected failure keeps none of the
    /// bytes) under a steady writer: the member stops with exit status 1 and
    /// its log saying why, having acknowledged nothing its disk did not
    /// confirm; restarted without the fault, it has every acknowledged write.
    /// Alone, it is the only copy; in three members it leads, the others
    /// elect a leader and go on, and every member ends with every write.
    @Test(arguments: [1, 3]) func aFailedFsyncStopsTheMemberAndLosesNothing(members: Int) throws {
        let cluster = try TestCluster(size: members) { $0.memberEnvironment[0] = ["BALLOT_FAULT_WAL_SYNC_FAILS_AFTER": "400"] }
        defer { cluster.cleanUp() }
        if members > 1 {
            // m1 leads: its flushes are the ones that acknowledge writes.
            let status = try cluster.etcdctl("endpoint", "status", "-w", "json", endpoints: cluster.endpoint(0))
            let fields = try #require((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])?.first?["Status"] as? [String: Any])
            let m1 = try #require(((fields["header"] as? [String: Any])?["member_id"] as? NSNumber)?.uint64Value)
            if (fields["leader"] as? NSNumber)?.uint64Value != m1 {
                let moved = try cluster.etcdctl("move-leader", String(m1, radix: 16))
                try #require(moved.status == 0, "\(moved.stdout)\(moved.stderr)")
            }
        }
        // Through a follower if there is one, so writes go on once another member leads.
        let writer = """
            import etcd3, sys, time
            acked = []
            c = etcd3.client(port=int(sys.argv[1]), timeout=5)
            for i in range(int(sys.argv[2])):
                try:
                    c.put("fsync/%05d" % i, "v%d" % i)
                    acked.append(i)
                except Exception:
                    time.sleep(0.1)
            print(" ".join(map(str, acked)))
            """
        let writes = members > 1 ? 1500 : 600
        let written = try TestCluster.run("/usr/bin/env", ["python3", "-c", writer, "\(cluster.members[members - 1].clientPort)", "\(writes)"], timeout: 300)
        let acked = written.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if members > 1 {
            #expect(acked.count > 1_000, "writes went on after the leader stopped: \(acked.count) acknowledged\n\(written.stderr.suffix(500))")
        } else {
            #expect(acked.count > 100 && acked.count < 450, "a lone member acknowledges only what it flushed: \(acked.count)\n\(written.stderr.suffix(500))")
        }
        let first = try #require(cluster.members[0].process)
        let deadline = Date().addingTimeInterval(20)
        while first.isRunning && Date() < deadline { usleep(100_000) }
        try #require(!first.isRunning, "the member went on after its fsync failed")
        #expect(first.terminationReason == .exit && first.terminationStatus == 1)
        let log = cluster.logs()
        #expect(log.contains("stopping: the disk failed") && log.contains("fdatasync") && log.contains("Input/output error"), "\(log.suffix(3000))")

        cluster.memberEnvironment[0] = nil
        try cluster.start(0)
        func check(_ port: Int) -> String {
            """
            import etcd3, sys, time
            acked = set(map(int, sys.argv[2].split())) if sys.argv[2] else set()
            \(Self.connected(port: port))
            keys = set()
            for _ in range(300):
                try:
                    keys = {m.key.decode() for _, m in c.get_prefix("fsync/", keys_only=True, serializable=True)}
                    if all("fsync/%05d" % i in keys for i in acked): break
                except Exception:
                    pass
                time.sleep(0.2)
            print(len([i for i in acked if "fsync/%05d" % i not in keys]))
            """
        }
        for i in 0..<members {
            let checked = try TestCluster.run("/usr/bin/env", ["python3", "-c", check(cluster.members[i].clientPort), "\(cluster.members[i].clientPort)", acked.map(String.init).joined(separator: " ")], timeout: 120)
            #expect(checked.stdout == "0\n", "member \(i + 1) misses acknowledged writes: \(checked.stdout)\(checked.stderr)\n\(cluster.logs().suffix(4000))")
        }
        // The members agree (the last entries may still be applying: a few tries).
        var hashes: [UInt32] = []
        for _ in 0..<20 {
            hashes = try cluster.hashKVs()
            if hashes.count == members && Set(hashes).count == 1 { break }
            usleep(500_000)
        }
        #expect(hashes.count == members && Set(hashes).count == 1, "\(hashes)\n\(cluster.logs().suffix(4000))")
    }
}
