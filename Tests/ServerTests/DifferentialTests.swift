import Foundation
import Glibc
import Testing

/// The same scripted session against Debian's etcd 3.4 and against Ballot,
/// one member each: every etcd v3 service over gRPC and the JSON gateway
/// (`clients/differential.py`), outputs compared line by line after the
/// script normalised what two servers may differ in (IDs, terms, sizes,
/// hashes, server-chosen lease IDs; revisions relative to the start).
@Suite(.serialized) struct DifferentialTests {
    static let script = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/differential.py").path

    static func session(_ endpoint: String) throws -> [String] {
        let run = try TestCluster.run("/usr/bin/env", ["python3", script, endpoint], timeout: 180)
        #expect(run.status == 0, "the session against \(endpoint) failed: \(run.stderr.suffix(2000))")
        return run.stdout.split(separator: "\n").map(String.init)
    }

    @Test func aSessionReadsTheSameFromEtcdAndFromBallot() throws {
        // etcd, as Debian ships it.
        let directory = NSTemporaryDirectory() + "ballot-differential-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = try TestCluster.freePorts(2)
        let etcd = Process()
        etcd.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        etcd.arguments = [
            "--name", "m1", "--data-dir", "\(directory)/m1.etcd",
            "--listen-client-urls", "http://127.0.0.1:\(ports[0])", "--advertise-client-urls", "http://127.0.0.1:\(ports[0])",
            "--listen-peer-urls", "http://127.0.0.1:\(ports[1])", "--initial-advertise-peer-urls", "http://127.0.0.1:\(ports[1])",
            "--initial-cluster", "m1=http://127.0.0.1:\(ports[1])",
        ]
        etcd.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        etcd.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try etcd.run()
        defer {
            kill(etcd.processIdentifier, SIGKILL)
            etcd.waitUntilExit()
        }
        let etcdEndpoint = "127.0.0.1:\(ports[0])"
        let deadline = Date().addingTimeInterval(20)
        while try TestCluster.run("/usr/bin/etcdctl", ["--endpoints", etcdEndpoint, "endpoint", "health"],
                                  environment: ["ETCDCTL_API": "3"], timeout: 10).status != 0, Date() < deadline {
            usleep(200_000)
        }
        let reference = try Self.session(etcdEndpoint)

        let cluster = try TestCluster(size: 1)
        defer { cluster.cleanUp() }
        let ballot = try Self.session(cluster.endpoint(0))

        #expect(reference.count > 60, "the session ran short against etcd: \(reference.suffix(3))")
        for (line, (expected, got)) in zip(reference, ballot).enumerated() where expected != got {
            Issue.record("line \(line + 1) differs\n  etcd:   \(expected)\n  ballot: \(got)")
        }
        #expect(reference.count == ballot.count, "etcd: \(reference.count) lines, Ballot: \(ballot.count)")
    }
}
