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
            import etcd3, os, sys, time
            c = etcd3.client(port=\(ports[0]), timeout=5)
            for _ in range(100):
                try:
                    c.status(); break
                except Exception:
                    time.sleep(0.2)
            acked = 0
            for i in range(1000):
                try:
                    c.put(f"full/{i:04d}", os.urandom(256 * 1024))
                    acked = i + 1
                except Exception:
                    break
            print(acked)
            """
        let written = try TestCluster.run("/usr/bin/env", ["python3", "-c", writer], timeout: 240)
        let acked = try #require(Int(written.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(written.stdout)\(written.stderr)")
        #expect(acked > 100, "the disk filled after \(acked) writes")
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
            import etcd3, time
            c = etcd3.client(port=\(ports[0]), timeout=5)
            for _ in range(300):
                try:
                    c.status(); break
                except Exception:
                    time.sleep(0.2)
            keys = {m.key.decode() for _, m in c.get_prefix("full/", keys_only=True)}
            missing = [i for i in range(\(acked)) if f"full/{i:04d}" not in keys]
            c.put("after", "1")
            print(len(missing), c.get("after")[0].decode())
            """
        let checked = try TestCluster.run("/usr/bin/env", ["python3", "-c", check], timeout: 120)
        #expect(checked.stdout == "0 1\n", "missing acknowledged writes, then the new write: \(checked.stdout)\(checked.stderr)")
    }
}
