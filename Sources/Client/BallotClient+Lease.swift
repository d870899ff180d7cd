import Synchronization
import EtcdAPI
import GRPCCore

extension BallotClient {
    /// A new lease of `ttl` seconds; its ID. Not repeated after an
    /// ambiguous failure: a second grant would make a second lease.
    public func grantLease(ttl: Int64) async throws -> Int64 {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttl
        return try await call(.write) { connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseGrant(request, options: options)
        }.id
    }

    /// Revoke a lease and delete its keys. Repeated after any failure: a
    /// lease already gone counts as revoked.
    public func revokeLease(_ id: Int64) async throws {
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = id
        do {
            _ = try await call(.idempotentWrite) { connection, options in
                try await Etcdserverpb_Lease.Client(wrapping: connection).leaseRevoke(request, options: options)
            }
        } catch let error as RPCError where error.code == .notFound {
            return
        }
    }

    /// The seconds a lease has left (-1 once it is gone).
    public func timeToLive(_ id: Int64) async throws -> Int64 {
        var request = Etcdserverpb_LeaseTimeToLiveRequest()
        request.id = id
        return try await call(.read) { connection, options in
            try await Etcdserverpb_Lease.Client(wrapping: connection).leaseTimeToLive(request, options: options)
        }.ttl
    }
}

/// A lease kept alive for as long as the session is open, as etcd's
/// `concurrency.Session`: what a `Mutex` or an `Election` holds its key
/// with, so that a client that dies lets go once the lease runs out.
/// Keep-alives go every third of the TTL on one LeaseKeepAlive stream,
/// opened again (on whichever member the balancer picks) when it breaks.
public final class Session: Sendable {
    public let client: BallotClient
    public let lease: Int64
    public let ttl: Int64
    private let keepAlive = Synchronization.Mutex<Task<Void, Never>?>(nil)
    private let expired = Synchronization.Mutex(false)

    public static let ttlDefault: Int64 = 60

    private init(client: BallotClient, lease: Int64, ttl: Int64) {
        self.client = client
        self.lease = lease
        self.ttl = ttl
    }

    /// Grant a lease of `ttl` seconds and start keeping it alive.
    public static func start(on client: BallotClient, ttl: Int64 = ttlDefault) async throws -> Session {
        precondition(ttl >= 1, "a session's lease lasts at least a second")
        let session = Session(client: client, lease: try await client.grantLease(ttl: ttl), ttl: ttl)
        let task = client.background { [session] in await session.keepAliveUntilClosed() }
        session.keepAlive.withLock { $0 = task }
        return session
    }

    /// Whether the member reported the lease gone (it expired before a
    /// keep-alive arrived, or was revoked): whatever it held is lost.
    public var isExpired: Bool { expired.withLock { $0 } }

    /// Stop keeping the lease alive and revoke it, which releases what
    /// the session held.
    public func close() async throws {
        keepAlive.withLock { $0?.cancel() }
        try await client.revokeLease(lease)
    }

    private func keepAliveUntilClosed() async {
        let interval = Duration.milliseconds(max(500, ttl * 1000 / 3))
        var random = SystemRandomNumberGenerator()
        var failures = 0
        while !Task.isCancelled {
            do {
                try await client.withEndpoint { [lease] _, connection in
                    try await Etcdserverpb_Lease.Client(wrapping: connection).leaseKeepAlive(options: client.streamOptions, requestProducer: { writer in
                        var request = Etcdserverpb_LeaseKeepAliveRequest()
                        request.id = lease
                        while !Task.isCancelled {
                            try await writer.write(request)
                            try await Task.sleep(for: interval)
                        }
                    }, onResponse: { response in
                        for try await message in response.messages where message.ttl <= 0 {
                            throw ClientError.leaseGone(id: lease)
                        }
                    })
                }
                failures = 0
            } catch ClientError.leaseGone {
                expired.withLock { $0 = true }
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                try? await Task.sleep(for: client.configuration.retry.delay(beforeRetry: min(failures, 10), using: &random))
            }
        }
    }
}
