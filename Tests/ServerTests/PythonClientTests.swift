import Foundation
import Testing

/// The PyPI etcd3 client, as its users run it, against a real cluster.
@Suite(.serialized) struct PythonClientTests {
    static let script = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/etcd3_kv.py").path

    @Test func kvAndTxnThroughTheEtcd3Client() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let run = try TestCluster.run("/usr/bin/env", ["python3", Self.script] + (0..<3).map(cluster.endpoint), timeout: 60)
        #expect(run.status == 0, "\(run.stderr)\n\(cluster.logs())")
        #expect(run.stdout == """
            get: 1 /py/a 1
            prefix: /py/a=1,/py/b=2
            member0: 2
            member1: 2
            member2: 2
            txn: True 2
            txn2: False 10 None
            delete: True False
            status: None

            """, "\(run.stderr)")
    }
}

extension PythonClientTests {
    static let watchLeaseScript = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/etcd3_watch_lease.py").path

    @Test func watchLeaseAndMembersThroughTheEtcd3Client() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let run = try TestCluster.run("/usr/bin/env", ["python3", Self.watchLeaseScript] + (0..<3).map(cluster.endpoint), timeout: 60)
        #expect(run.status == 0, "\(run.stderr)\n\(cluster.logs())")
        #expect(run.stdout == """
            watch: PutEvent:/w/a=1,PutEvent:/w/b=2,DeleteEvent:/w/a=
            lease ttl: 60 True ['/l/k']
            refresh: [60]
            after revoke: None
            members: m1,m2,m3

            """, "\(run.stderr)")
    }
}

extension PythonClientTests {
    static let wireScript = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/grpc_wire.py").path
    static let framesScript = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/http2_frames.py").path
    static let pingsScript = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/ping_per_call.py").path

    /// A request whose last DATA frame (END_STREAM) is the one that fills
    /// half the stream window: the member answers the call, not with a
    /// WINDOW_UPDATE HTTP/2 forbids on a stream whose sender is done (which
    /// once closed the connection: etcdctl's 1.6 MB put saw "transport is
    /// closing" one time in five). etcd 3.4 prints the same line.
    @Test func aRequestEndingAtTheWindowRefillIsAnswered() throws {
        let cluster = try TestCluster(size: 1)
        defer { cluster.cleanUp() }
        try cluster.waitUntilWritable()
        for _ in 0..<3 {
            let run = try TestCluster.run("/usr/bin/env", ["python3", Self.framesScript, cluster.endpoint(0)], timeout: 60)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout == "HEADERS DATA HEADERS END_STREAM\n", "\(run.stdout)\(run.stderr)\n\(cluster.logs().suffix(2000))")
        }
    }

    /// A thousand calls on one connection, each followed by a PING as
    /// grpc-go's and gRPC core's BDP estimators send them: every call and
    /// ping answered, no GOAWAY (etcd 3.4 prints the same line). With
    /// swift-nio-http2's default flood limit the member closed the
    /// connection after 200 pings, and etcd's benchmark reconnected 16
    /// times in 3,000 puts.
    @Test func aPingAfterEveryCallIsNoFlood() throws {
        let cluster = try TestCluster(size: 1)
        defer { cluster.cleanUp() }
        try cluster.waitUntilWritable()
        let run = try TestCluster.run("/usr/bin/env", ["python3", Self.pingsScript, cluster.endpoint(0), "1000"], timeout: 120)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "calls answered: 1000, pings acknowledged: 1000, goaway: none\n", "\(run.stdout)\(run.stderr)")
    }

    /// The client port's own gRPC-over-HTTP/2 layer (API/GRPCWire) as
    /// grpcio meets it; etcd 3.4 prints the same lines for this script.
    @Test func grpcOnTheClientPortAsGrpcioSpeaksIt() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let run = try TestCluster.run("/usr/bin/env", ["python3", Self.wireScript, cluster.endpoint(1)], timeout: 120)
        #expect(run.status == 0, "\(run.stderr)\n\(cluster.logs())")
        #expect(run.stdout == """
            big value: 1500000 True
            too large: RESOURCE_EXHAUSTED grpc: received message larger than max
            unknown method: UNIMPLEMENTED
            gzip: UNIMPLEMENTED
            concurrent puts: 300 300
            watch sizes: [1000000, 1000000, 1000000]
            after cancel: 1

            """, "\(run.stderr)")
    }
}
