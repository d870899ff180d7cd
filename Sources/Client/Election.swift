import EtcdAPI
import Foundation
import GRPCCore

/// A leader election held through a `Session`, in the spirit of etcd's
/// `concurrency.Election`, on the members' Election service
/// (`v3electionpb`): candidates' keys under the name, the oldest leads.
/// Winning gives a fencing token (the leader key's create revision) for
/// guarding the leader's writes, as `Mutex` does for a lock holder's.
public final class Election: Sendable {
    public let name: String
    public let session: Session
    private let leadership = Locked<V3electionpb_LeaderKey?>(nil)

    public init(_ name: String, session: Session) {
        self.name = name
        self.session = session
    }

    /// Wait until this session leads, announcing `value`; the fencing token.
    @discardableResult
    public func campaign(_ value: String) async throws -> Int64 {
        var request = V3electionpb_CampaignRequest()
        request.name = Data(name.utf8)
        request.lease = session.lease
        request.value = Data(value.utf8)
        // Campaigning again with the same lease finds the same key.
        let leader = try await session.client.call(.idempotentWrite, waitsForTurn: true) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).campaign(request, options: options)
        }.leader
        leadership.withLock { $0 = leader }
        return leader.rev
    }

    /// The fencing token while leading.
    public var fencingToken: Int64? { leadership.withLock { $0?.rev } }

    /// Announce a new value without giving up leadership.
    public func proclaim(_ value: String) async throws {
        guard let leader = leadership.withLock({ $0 }) else { throw RPCError(code: .failedPrecondition, message: "election: not leader") }
        var request = V3electionpb_ProclaimRequest()
        request.leader = leader
        request.value = Data(value.utf8)
        _ = try await session.client.call(.idempotentWrite) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).proclaim(request, options: options)
        }
    }

    /// Give up leadership (the next candidate leads).
    public func resign() async throws {
        guard let leader = leadership.withLock({ $0 }) else { return }
        var request = V3electionpb_ResignRequest()
        request.leader = leader
        _ = try await session.client.call(.idempotentWrite) { connection, options in
            try await V3electionpb_Election.Client(wrapping: connection).resign(request, options: options)
        }
        leadership.withLock { $0 = nil }
    }

    /// The current leader's value, or nil with no leader.
    public func leader() async throws -> String? {
        var request = V3electionpb_LeaderRequest()
        request.name = Data(name.utf8)
        do {
            let response = try await session.client.call(.read) { connection, options in
                try await V3electionpb_Election.Client(wrapping: connection).leader(request, options: options)
            }
            return String(decoding: response.kv.value, as: UTF8.self)
        } catch let error as RPCError where error.message == "election: no leader" {
            return nil
        }
    }

    /// Each leader's value as it changes (the first: the current one), as
    /// etcd's Observe streams it. Ends when the stream does.
    public func observe() -> AsyncThrowingStream<String, any Error> {
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        var leaderRequest = V3electionpb_LeaderRequest()
        leaderRequest.name = Data(name.utf8)
        let request = leaderRequest
        let client = session.client
        let task = client.background {
            do {
                try await client.withEndpoint { _, connection in
                    try await V3electionpb_Election.Client(wrapping: connection).observe(request, options: client.streamOptions) { response in
                        for try await message in response.messages { continuation.yield(String(decoding: message.kv.value, as: UTF8.self)) }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
