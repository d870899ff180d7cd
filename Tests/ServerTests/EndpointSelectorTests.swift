import Client
import Consensus
import GRPCCore
import Testing

/// The client's balancing, ejection and retry rules, exactly: with a
/// seeded generator and times passed in.
@Suite struct EndpointSelectorTests {
    /// A seeded generator, so every draw repeats.
    typealias Seeded = DeterministicRandom

    static let endpoints = [Endpoint(host: "a", port: 1), Endpoint(host: "b", port: 2), Endpoint(host: "c", port: 3)]
    static let ejection = EndpointSelector.Ejection(base: .seconds(1), max: .seconds(4))

    static func selector(_ policy: BalancingPolicy) throws -> EndpointSelector {
        try EndpointSelector(endpoints: endpoints, policy: policy, ejection: ejection)
    }

    @Test func roundRobinTakesEachInTurnAndSkipsTheEjected() throws {
        var selector = try Self.selector(.roundRobin)
        var random = Seeded(seed: 1)
        let now = ContinuousClock.now
        var picks: [Int] = []
        for _ in 0..<6 {
            let i = selector.pick(now: now, using: &random)
            picks.append(i)
            selector.finished(i, healthy: i != 1, now: now)
        }
        // b fails at its first turn and is left out until its ejection ends.
        #expect(picks == [0, 1, 2, 0, 2, 0])
        #expect(selector.isEjected(1, now: now + .milliseconds(999)))
        #expect(!selector.isEjected(1, now: now + .seconds(1)))
    }

    @Test func ejectionDoublesWithEachFailureUpToItsMaxAndASuccessClearsIt() throws {
        var selector = try Self.selector(.roundRobin)
        var random = Seeded(seed: 2)
        let start = ContinuousClock.now
        var now = start
        for expected in [1, 2, 4, 4] as [Int64] {
            let i = selector.pick(now: now, avoiding: [0, 2], using: &random)
            #expect(i == 1)
            selector.finished(1, healthy: false, now: now)
            #expect(selector.isEjected(1, now: now + .seconds(expected) - .milliseconds(1)))
            #expect(!selector.isEjected(1, now: now + .seconds(expected)))
            now = now + .seconds(expected)
        }
        let i = selector.pick(now: now, avoiding: [0, 2], using: &random)
        selector.finished(i, healthy: true, now: now)
        selector.finished(selector.pick(now: now, avoiding: [0, 2], using: &random), healthy: false, now: now)
        #expect(!selector.isEjected(1, now: now + .seconds(1)), "after a success, the next failure ejects for the base time again")
    }

    @Test func withEveryEndpointEjectedTheOneBackSoonestIsUsed() throws {
        var selector = try Self.selector(.random)
        var random = Seeded(seed: 3)
        let now = ContinuousClock.now
        for (i, offset) in [(0, 3), (1, 1), (2, 2)] {
            #expect(selector.pick(now: now, avoiding: Set([0, 1, 2]).subtracting([i]), using: &random) == i)
            selector.finished(i, healthy: false, now: now + .milliseconds(offset))
        }
        #expect(selector.pick(now: now + .milliseconds(10), using: &random) == 1)
    }

    @Test func avoidedEndpointsAreUsedOnlyWhenNothingElseIsHealthy() throws {
        var selector = try Self.selector(.random)
        var random = Seeded(seed: 4)
        let now = ContinuousClock.now
        for _ in 0..<50 { #expect(selector.pick(now: now, avoiding: [0, 1], using: &random) == 2) }
        #expect([0, 1, 2].contains(selector.pick(now: now, avoiding: [0, 1, 2], using: &random)))
    }

    @Test func leastOutstandingPicksTheIdlest() throws {
        var selector = try Self.selector(.leastOutstanding)
        var random = Seeded(seed: 5)
        let now = ContinuousClock.now
        let first = (0..<3).map { _ in selector.pick(now: now, using: &random) }
        #expect(Set(first) == [0, 1, 2], "one call each before any gets a second")
        selector.finished(2, healthy: true, now: now)
        #expect(selector.pick(now: now, using: &random) == 2)
        #expect(selector.outstandingCalls(2) == 1)
    }

    @Test func weightedRandomFollowsTheWeights() throws {
        let weights = [Self.endpoints[0]: 0, Self.endpoints[1]: 1, Self.endpoints[2]: 3]
        var selector = try Self.selector(.weightedRandom(weights))
        var random = Seeded(seed: 6)
        let now = ContinuousClock.now
        var counts = [0, 0, 0]
        for _ in 0..<4_000 {
            let i = selector.pick(now: now, using: &random)
            counts[i] += 1
            selector.finished(i, healthy: true, now: now)
        }
        #expect(counts[0] == 0)
        #expect((2_800...3_200).contains(counts[2]) && (800...1_200).contains(counts[1]), "\(counts)")
    }

    @Test func leaderPreferredGoesToTheLeaderWhileItIsHealthy() throws {
        var selector = try Self.selector(.leaderPreferred)
        var random = Seeded(seed: 7)
        let now = ContinuousClock.now
        for (i, id) in [(0, 11), (1, 12), (2, 13)] as [(Int, UInt64)] { selector.learned(memberID: id, at: i, leader: 13) }
        for _ in 0..<5 {
            let i = selector.pick(now: now, using: &random)
            #expect(i == 2)
            selector.finished(i, healthy: true, now: now)
        }
        // The leader fails: ejected, and the others take turns.
        selector.finished(selector.pick(now: now, using: &random), healthy: false, now: now)
        selector.forgetLeader()
        let next = [selector.pick(now: now, using: &random), selector.pick(now: now, using: &random)]
        #expect(Set(next) == [0, 1])
    }

    @Test func retriesRepeatOnlyWhatIsSafe() {
        func verdict(_ code: RPCError.Code, _ message: String, _ safety: CallSafety) -> ClientRetryPolicy.Verdict {
            ClientRetryPolicy.verdict(on: RPCError(code: code, message: message), safety: safety)
        }
        // Nothing was proposed: any call goes again, elsewhere.
        #expect(verdict(.unavailable, "etcdserver: no leader", .write) == .init(retry: true, memberUnhealthy: true))
        // Fate unknown: a plain write is not repeated, a read or an idempotent write is.
        for message in ["etcdserver: request timed out", "connection refused", "etcdserver: server stopped"] {
            #expect(!verdict(.unavailable, message, .write).retry)
            #expect(verdict(.unavailable, message, .read).retry)
            #expect(verdict(.unavailable, message, .idempotentWrite).retry)
        }
        #expect(!verdict(.deadlineExceeded, "", .write).retry && verdict(.deadlineExceeded, "", .read).memberUnhealthy)
        // The member answered: the request's own fault, never repeated, the member fine.
        for code in [RPCError.Code.invalidArgument, .permissionDenied, .failedPrecondition, .outOfRange, .resourceExhausted, .notFound] {
            #expect(verdict(code, "x", .read) == .init(retry: false, memberUnhealthy: false))
        }
        #expect(!ClientRetryPolicy.verdict(on: CancellationError(), safety: .read).retry)
    }

    @Test func backoffDrawsBelowTheDoublingCeiling() {
        let policy = ClientRetryPolicy(attempts: 10, baseDelay: .milliseconds(10), maxDelay: .milliseconds(100))
        var random = Seeded(seed: 8)
        for retry in 1...8 {
            let ceiling = min(Duration.milliseconds(100), .milliseconds(10) * (1 << (retry - 1)))
            let draws = (0..<200).map { _ in policy.delay(beforeRetry: retry, using: &random) }
            #expect(draws.allSatisfy { $0 >= .zero && $0 <= ceiling })
            #expect(draws.contains { $0 > ceiling / 2 } && draws.contains { $0 < ceiling / 2 }, "jitter spreads the draws")
        }
    }
}
