import Foundation
@testable import Server
import Testing

/// `/metrics` with etcd's metric names, `/health` and `/readyz`, as
/// Prometheus and load balancers read them.
@Suite(.serialized) struct OperationsTests {
    /// The value of the first sample whose line starts with `prefix`.
    static func sample(_ text: String, _ prefix: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test func metricsHealthAndReadiness() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for i in 0..<10 { try cluster.etcdctl("put", "m/\(i)", "v") }
        #expect(try cluster.etcdctl("get", "missing", "--rev=999").status != 0)
        var leaders = 0.0
        let status = try cluster.etcdctl("endpoint", "status", "-w", "json", endpoints: cluster.endpoint(0))
        let leaderID = ((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])?.first?["Status"] as? [String: Any])?["leader"] as? NSNumber
        let leaderHex = String(try #require(leaderID?.uint64Value, "\(status.stdout)"), radix: 16)
        for i in 0..<3 {
            let metrics = try cluster.http(i, "/metrics")
            #expect(metrics.stdout.hasSuffix("\n200"), "\(metrics.stdout.suffix(200))")
            let text = metrics.stdout
            #expect(Self.sample(text, "etcd_server_has_leader ") == 1, "member \(i)")
            leaders += Self.sample(text, "etcd_server_is_leader ") ?? 0
            #expect((Self.sample(text, "etcd_server_leader_changes_seen_total ") ?? 0) >= 1)
            #expect((Self.sample(text, "etcd_server_proposals_committed_total ") ?? 0) >= 11)
            #expect((Self.sample(text, "etcd_server_proposals_applied_total ") ?? 0) >= 11)
            #expect((Self.sample(text, "etcd_disk_wal_fsync_duration_seconds_count ") ?? 0) > 0)
            #expect((Self.sample(text, "etcd_mvcc_db_total_size_in_bytes ") ?? 0) > 0)
            #expect(text.contains("# TYPE etcd_disk_backend_commit_duration_seconds histogram"))
            // Peers ping each other every second; give the first pings time.
            var rtt = Self.sample(text, "etcd_network_peer_round_trip_time_seconds_count ") ?? 0
            let deadline = Date().addingTimeInterval(5)
            while rtt == 0 && Date() < deadline {
                usleep(200_000)
                rtt = Self.sample(try cluster.http(i, "/metrics").stdout, "etcd_network_peer_round_trip_time_seconds_count ") ?? 0
            }
            #expect(rtt > 0, "member \(i) measured no peer round trip")
            // Message bytes by peer: the leader talks to both others, a
            // follower to the leader, and to the other follower only if
            // either campaigned (their votes count too).
            let traffic = try cluster.http(i, "/metrics").stdout
            let leads = Self.sample(traffic, "etcd_server_is_leader ") == 1
            for name in ["etcd_network_peer_sent_bytes_total{To=", "etcd_network_peer_received_bytes_total{From="] {
                let samples = traffic.split(separator: "\n").filter { $0.hasPrefix(name) }
                #expect(leads ? samples.count == 2 : samples.contains { $0.hasPrefix(name + "\"\(leaderHex)\"}") }, "member \(i): \(samples)")
                #expect(samples.count <= 2 && samples.allSatisfy { (Double($0.split(separator: " ").last ?? "") ?? 0) > 0 }, "member \(i): \(samples)")
            }
        }
        #expect(leaders == 1)
        // gRPC counters: etcdctl spreads its calls over the endpoints, so sum them.
        let texts = try (0..<3).map { try cluster.http($0, "/metrics").stdout }
        let puts = texts.compactMap { Self.sample($0, #"grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#) }
        #expect(puts.reduce(0, +) >= 10, "\(puts)")
        let refused = texts.compactMap { Self.sample($0, #"grpc_server_handled_total{grpc_code="OutOfRange",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#) }
        #expect(refused.reduce(0, +) == 1, "\(refused)")

        let health = try cluster.http(1, "/health")
        #expect(health.stdout == "{\"health\":\"true\"}\n200")
        #expect(try cluster.http(2, "/readyz").stdout == "ok\n\n200")
        #expect(try cluster.http(2, "/nope").stdout.hasSuffix("404"))
        // The client URL serves the same beside gRPC, as etcd's does.
        for i in 0..<3 {
            #expect(try cluster.http(i, "/health", clientPort: true).stdout == "{\"health\":\"true\"}\n200")
            #expect(try cluster.http(i, "/version", clientPort: true).stdout == "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}\n200")
            #expect(try cluster.http(i, "/metrics", clientPort: true).stdout.contains("etcd_server_has_leader 1"))
            #expect(try cluster.etcdctl("get", "m/0", "--print-value-only", endpoints: cluster.endpoint(i)).stdout == "v\n")
        }
        // Bytes that are neither HTTP/2's preface nor HTTP get HTTP's 400, and the port keeps serving.
        let send = "import socket; s = socket.create_connection(('127.0.0.1', \(cluster.members[0].clientPort))); "
            + "s.sendall(b'PRX nonsense\\r\\n\\r\\n'); s.settimeout(5); print(s.recv(100).decode())"
        let garbage = try TestCluster.run("/usr/bin/env", ["python3", "-c", send], timeout: 10)
        #expect(garbage.stdout.hasPrefix("HTTP/1.1 400"), "\(garbage)")
        #expect(try cluster.etcdctl("get", "m/1", "--print-value-only", endpoints: cluster.endpoint(0)).stdout == "v\n")

        // Without a quorum there is no leader, and health says so.
        cluster.kill(1)
        cluster.kill(2)
        let deadline = Date().addingTimeInterval(15)
        var alone = try cluster.http(0, "/health")
        while !alone.stdout.hasSuffix("503") && Date() < deadline {
            usleep(200_000)
            alone = try cluster.http(0, "/health")
        }
        #expect(alone.stdout == "{\"health\":\"false\"}\n\n503")
    }

    static let earlyClientsScript = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/early_clients.py").path

    /// Clients that connect while their member is still starting (its port
    /// bound, the member not yet part of a cluster with a quorum) wait and
    /// are answered once it serves, as etcd's are: neither refused nor
    /// dropped, and they cannot crash it. (Connections accepted before the
    /// gRPC server took them used to be dropped with their streams open,
    /// which NIO stops the process for.)
    @Test func clientsThatComeEarlyWaitAndAreAnswered() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        cluster.stop()
        try cluster.start(0)
        let port = cluster.members[0].clientPort
        let bound = "import socket,time\nfor _ in range(100):\n  try:\n    socket.create_connection(('127.0.0.1', \(port)), timeout=1).close(); break\n  except OSError: time.sleep(0.1)"
        _ = try TestCluster.run("/usr/bin/env", ["python3", "-c", bound], timeout: 20)
        let early = Process()
        early.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        early.arguments = ["python3", Self.earlyClientsScript, "\(port)", "40", "8"]
        let output = Pipe()
        early.standardOutput = output
        try early.run()
        usleep(1_000_000)
        try cluster.start(1)
        try cluster.start(2)
        let answer = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        early.waitUntilExit()
        #expect(answer == "answered 40 of 40\n", "\(answer)\n\(cluster.logs())")
        #expect(cluster.members[0].process?.isRunning == true, "\(cluster.logs())")
        #expect(try cluster.etcdctl("put", "after-early", "1", endpoints: cluster.endpoint(0)).stdout == "OK\n")
    }

    /// etcd's own e2e metrics test (TestV3Metrics*), line for line: each
    /// round puts a key, deletes it and runs a watch that etcdctl ends.
    @Test func mvccVersionAndWatchMetricsReadAsEtcds() throws {
        let cluster = try TestCluster(size: 1)
        defer { cluster.cleanUp() }
        // The harness's own readiness write goes first, so the store is
        // empty as etcd's is at the e2e test's start; counts are taken from there.
        #expect(try cluster.etcdctl("del", "ballot-e2e-ready").stdout == "1\n")
        let start = try cluster.http(0, "/metrics", clientPort: true).stdout
        #expect(Self.sample(start, "etcd_debugging_mvcc_keys_total ") == 0)
        let puts = Int(Self.sample(start, "etcd_mvcc_put_total ") ?? -1), deletes = Int(Self.sample(start, "etcd_mvcc_delete_total ") ?? -1)
        #expect(try cluster.etcdctl("put", "k", "v").status == 0)
        let expected = [
            "etcd_mvcc_put_total \(puts + 2)",
            "etcd_debugging_mvcc_keys_total 1",
            "etcd_mvcc_delete_total \(deletes + 3)",
            #"etcd_server_version{server_version="3.4.23"} 1"#,
            #"etcd_cluster_version{cluster_version="3.4"} 1"#,
            #"grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 6"#,
        ]
        for (round, line) in expected.enumerated() {
            #expect(try cluster.etcdctl("put", "\(round + 1)", "v").status == 0)
            #expect(try cluster.etcdctl("del", "\(round + 1)").stdout == "1\n")
            // etcdctl watch from revision 1 sees k's put, then is stopped.
            let watch = try TestCluster.run("/usr/bin/timeout", ["2", "etcdctl", "--endpoints", cluster.endpoints, "watch", "k", "--rev", "1"],
                                            environment: ["ETCDCTL_API": "3"], timeout: 10)
            #expect(watch.stdout.hasPrefix("PUT\nk\nv\n"), "\(watch)")
            // The handler sees the reset stream a moment after etcdctl leaves.
            var metrics = ""
            let deadline = Date().addingTimeInterval(3)
            repeat {
                metrics = try cluster.http(0, "/metrics", clientPort: true).stdout
                if metrics.split(separator: "\n").contains(Substring(line)) { break }
                usleep(100_000)
            } while Date() < deadline
            #expect(metrics.split(separator: "\n").contains(Substring(line)), "round \(round + 1): \(line)")
        }
    }

    @Test func sampleValuesAreWrittenAsGosClientWritesThem() {
        let cases: [(Double, String)] = [
            (1, "1"), (0.5, "0.5"), (1_000_000, "1e+06"), (123_456, "123456"), (1_234_567, "1.234567e+06"),
            (0.0001, "0.0001"), (0.00001, "1e-05"), (2.5e-7, "2.5e-07"), (53_248, "53248"), (1e21, "1e+21"),
            (12_345_678.9, "1.23456789e+07"), (-3, "-3"), (0.001, "0.001"), (0, "0"), (.infinity, "+Inf"),
        ]
        for (value, go) in cases { #expect(ServerMetrics.goFloat(value) == go, "\(value)") }
    }
}
