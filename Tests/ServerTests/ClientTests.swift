import Client
import EtcdAPI
import Foundation
import GRPCCore
import Testing

/// The Swift client (`Sources/Client`) against real members: KV at each
/// consistency level, a killed member ejected while calls go on, a watch
/// that resumes on another member, `Mutex` with fencing, `Election`, `STM`.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ClientTests {
    /// A put through etcdctl that must succeed (a failed one would show
    /// as a missing watch event instead of as itself).
    static func put(_ cluster: TestCluster, _ key: String, _ value: String, through member: Int) throws {
        let out = try cluster.etcdctl("put", key, value, endpoints: cluster.endpoint(member))
        guard out.status == 0 else { throw TestFailure("put \(key) through m\(member + 1) failed: \(out.stderr)") }
    }

    static func configuration(_ cluster: TestCluster, _ members: [Int]? = nil, balancing: BalancingPolicy = .roundRobin) -> ClientConfiguration {
        let endpoints = (members ?? Array(cluster.members.indices)).map { Endpoint(host: "127.0.0.1", port: cluster.members[$0].clientPort) }
        // Generous: on a loaded CI runner a call can wait long for a thread.
        return ClientConfiguration(endpoints: endpoints, balancing: balancing, requestTimeout: .seconds(60))
    }

    @Test func kvAtEveryConsistencyLevel() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster(extraArguments: ["--lease-reads"]) }
        defer { cluster.cleanUp() }
        try await BallotClient.with(Self.configuration(cluster, balancing: .leaderPreferred)) { client in
            let revision = try await client.put("c/a", "1")
            try await client.put("c/b", "2")
            for consistency in [ReadConsistency.linearizable, .lease, .bounded(maxStaleness: .seconds(2), maxRevisions: nil)] {
                #expect(try await client.get("c/a", consistency: consistency)?.value == "1")
                #expect(try await client.get(prefix: "c/", consistency: consistency).map(\.value) == ["1", "2"])
            }
            // A serializable read may lag; it sees the write once its member applied it.
            var seen = try await client.get("c/a", consistency: .serializable)
            for _ in 0..<50 where seen == nil {
                try await Task.sleep(for: .milliseconds(100))
                seen = try await client.get("c/a", consistency: .serializable)
            }
            #expect(seen?.createRevision == revision)
            #expect(try await client.delete("c/", prefix: true) == 2)
            #expect(try await client.get("c/a") == nil)
        }
    }

    @Test func aKilledMemberIsEjectedAndCallsGoOn() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        try await TestCluster.offPool { cluster.kill(0) }
        var configuration = Self.configuration(cluster)
        // Ejected once, for longer than the test: it stays out.
        configuration.ejection = EndpointSelector.Ejection(base: .seconds(120), max: .seconds(120))
        try await BallotClient.with(configuration) { client in
            for i in 0..<30 {
                try await client.put("k\(i)", "\(i)", idempotent: true)
                #expect(try await client.get("k\(i)")?.value == "\(i)")
            }
            // The dead member is out. (Another may be too: if the dead one led,
            // the others answered "no leader" until they elected one.)
            #expect(client.ejectedEndpoints().contains(client.configuration.endpoints[0]))
        }
    }

    @Test func aWatchResumesOnAnotherMemberWithoutGapsOrRepeats() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        // Round robin: the first put goes to m1, the watch to m2, which is killed.
        try await BallotClient.with(Self.configuration(cluster, [0, 1])) { client in
            let start = try await client.put("w-start", "x") + 1
            var iterator = client.watch("w/", prefix: true, startRevision: start).makeAsyncIterator()
            var seen: [String] = []
            try await TestCluster.offPool { for i in 1...5 { try Self.put(cluster, "w/\(i)", "v\(i)", through: 2) } }
            while seen.count < 5, let event = try await iterator.next() { seen.append(event.keyValue.key) }
            try await TestCluster.offPool { cluster.kill(1) }
            try await TestCluster.offPool { for i in 6...10 { try Self.put(cluster, "w/\(i)", "v\(i)", through: 2) } }
            while seen.count < 10, let event = try await iterator.next() { seen.append(event.keyValue.key) }
            #expect(seen == (1...10).map { "w/\($0)" })
        }
    }

    @Test func mutexTokensGrowAndAHolderThatLostTheLockIsRefused() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        try await BallotClient.with(Self.configuration(cluster)) { client in
            let a = Mutex("res", session: try await Session.start(on: client, ttl: 30))
            let b = Mutex("res", session: try await Session.start(on: client, ttl: 30))
            let tokenA = try await a.lock()
            #expect(try await a.guardedPut("protected", "from A"))
            let waiting = Task { try await b.lock() }
            try await Task.sleep(for: .milliseconds(500))
            #expect(b.fencingToken == nil, "B waits while A holds the lock")
            // A loses its lease, as when it pauses past the TTL.
            try await client.revokeLease(a.session.lease)
            let tokenB = try await waiting.value
            #expect(tokenB > tokenA)
            #expect(try await a.guardedPut("protected", "stale A") == false, "A's guard is refused")
            #expect(try await b.guardedPut("protected", "from B"))
            #expect(try await client.get("protected")?.value == "from B")
            try await b.unlock()
            try await b.session.close()
        }
    }

    @Test func anElectionHasOneLeaderAndObserversSeeEachValue() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        try await BallotClient.with(Self.configuration(cluster)) { client in
            let a = Election("leader", session: try await Session.start(on: client, ttl: 30))
            let b = Election("leader", session: try await Session.start(on: client, ttl: 30))
            let tokenA = try await a.campaign("a")
            #expect(try await a.leader() == "a")
            var observed = a.observe().makeAsyncIterator()
            #expect(try await observed.next() == "a")
            let campaigning = Task { try await b.campaign("b") }
            try await Task.sleep(for: .milliseconds(500))
            #expect(b.fencingToken == nil, "one leader at a time")
            try await a.proclaim("a2")
            #expect(try await observed.next() == "a2")
            try await a.resign()
            let tokenB = try await campaigning.value
            #expect(tokenB > tokenA)
            #expect(try await observed.next() == "b")
            #expect(try await b.leader() == "b")
        }
    }

    @Test func concurrentSTMIncrementsAllLand() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        try await BallotClient.with(Self.configuration(cluster, balancing: .leastOutstanding)) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<10 {
                            try await client.stm { tx in
                                let count = Int(try await tx.get("counter") ?? "0")!
                                tx.put("counter", "\(count + 1)")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.get("counter")?.value == "40")
        }
    }
}
