import Client
import Foundation
import Testing

/// The client's balancing policies on a real 3-member cluster: where its
/// reads land (counted by each member's own `grpc_server_handled_total`),
/// and that it keeps working, with no failed operation, while any one
/// member is killed.
@Suite(.serialized, .timeLimit(.minutes(15))) struct BalancingTests {
    static let reads = 300

    /// A generous timeout: on a loaded CI runner a call can wait long for a thread.
    static func configuration(_ endpoints: [Endpoint], _ policy: BalancingPolicy) -> ClientConfiguration {
        ClientConfiguration(endpoints: endpoints, balancing: policy, requestTimeout: .seconds(60))
    }

    /// Range calls member `i` answered OK, from its metrics.
    static func ranges(_ cluster: TestCluster, _ i: Int) throws -> Int {
        let metrics = try cluster.http(i, "/metrics").stdout
        let line = metrics.split(separator: "\n").first {
            $0.hasPrefix("grpc_server_handled_total{") && $0.contains(#"grpc_code="OK""#) && $0.contains(#"grpc_method="Range""#)
        }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    @Test func eachPolicySpreadsReadsAsItSaysAndSurvivesAKilledMember() async throws {
        let cluster = try await TestCluster.offPool { try TestCluster() }
        defer { cluster.cleanUp() }
        let endpoints = cluster.members.map { Endpoint(host: "127.0.0.1", port: $0.clientPort) }
        let weights = [endpoints[0]: 1, endpoints[1]: 2, endpoints[2]: 3]
        let policies: [(String, BalancingPolicy)] = [("round robin", .roundRobin), ("random", .random), ("weighted", .weightedRandom(weights)),
                                                     ("leader", .leaderPreferred), ("least outstanding", .leastOutstanding)]
        try await BallotClient.with(Self.configuration(endpoints, .roundRobin)) { setup in try await setup.put("b", "0", idempotent: true) }
        for (round, (name, policy)) in policies.enumerated() {
            let status = try await TestCluster.offPool { try PeerAttackTests.status(cluster) }
            let leader = try #require(status.ids.firstIndex { status.leaders.contains($0.rawValue) })
            let before = try await TestCluster.offPool { try (0..<3).map { try Self.ranges(cluster, $0) } }
            let failures = try await BallotClient.with(Self.configuration(endpoints, policy)) { client in
                // Where reads land with every member up (serializable: each
                // answered by the member asked, with nothing forwarded).
                if case .leastOutstanding = policy {
                    // Concurrent, so that calls are outstanding when others pick.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for _ in 0..<10 {
                            group.addTask { for _ in 0..<(Self.reads / 10) { _ = try await client.get("b", consistency: .serializable) } }
                        }
                        try await group.waitForAll()
                    }
                } else {
                    for _ in 0..<Self.reads { _ = try await client.get("b", consistency: .serializable) }
                }
                let after = try await TestCluster.offPool { try (0..<3).map { try Self.ranges(cluster, $0) } }
                let landed = (0..<3).map { after[$0] - before[$0] }
                #expect(landed.reduce(0, +) == Self.reads, "\(name): \(landed)")
                let share = Double(Self.reads) / 3
                switch policy {
                case .roundRobin: #expect(landed.allSatisfy { abs(Double($0) - share) <= 2 }, "\(name): \(landed)")
                case .random, .leastOutstanding: #expect(landed.allSatisfy { abs(Double($0) - share) <= share * 0.4 }, "\(name): \(landed)")
                case .weightedRandom:
                    for (i, weight) in [1.0, 2, 3].enumerated() {
                        let expected = Double(Self.reads) * weight / 6
                        #expect(abs(Double(landed[i]) - expected) <= expected * 0.4, "\(name): \(landed)")
                    }
                case .leaderPreferred: #expect(landed[leader] >= Self.reads - 2, "\(name): leader m\(leader + 1), \(landed)")
                }

                // One member killed under a load of reads and idempotent writes
                // (a different one each round, the leader included): nothing fails.
                var failures: [String] = []
                let victim = round % 3
                for i in 0..<200 {
                    if i == 50 { try await TestCluster.offPool { cluster.kill(victim) } }
                    do {
                        try await client.put("b/\(i % 20)", "\(i)", idempotent: true)
                        _ = try await client.get("b/\(i % 20)", consistency: i % 2 == 0 ? .linearizable : .serializable)
                    } catch {
                        failures.append("\(i): \(error)")
                    }
                }
                return failures
            }
            #expect(failures.isEmpty, "\(name): operations failed with member m\(round % 3 + 1) killed: \(failures.prefix(5))")
            try await TestCluster.offPool {
                try cluster.start(round % 3)
                try cluster.waitUntilWritable()
            }
        }
    }
}
