import Foundation
import Storage

/// When leases expire. Grants and revocations are replicated; expiry is
/// decided by the leader alone from its clock, as in etcd: a new leader
/// starts every lease afresh, extended by an election timeout, so no lease
/// expires because of the election itself. Followers track which leases
/// exist but never expire one. Deadlines are on the monotonic clock, so a
/// wall-clock step cannot expire every lease at once.
final class Lessor: @unchecked Sendable {
    struct Lease {
        var ttl: Int64
        /// Nil on followers: only the leader's clock runs leases.
        var deadline: ContinuousClock.Instant?
    }

    private let clock = ContinuousClock()

    /// The shortest TTL granted: 1.5 election timeouts, rounded up to a
    /// second (etcd's rule), so a lease survives one election.
    let minimumTTL: Int64
    static let maximumTTL: Int64 = 9_000_000_000
    /// A revocation proposed for an expired lease is proposed again if it
    /// has not been applied after this long (it may have been lost).
    static let revokeRetrySeconds = 2.0

    private let lock = NSLock()
    private var leases: [Int64: Lease] = [:]
    private var primary = false
    private var revoking: [Int64: ContinuousClock.Instant] = [:]

    init(records: [LeaseRecord], electionSeconds: Double) {
        minimumTTL = Int64((1.5 * electionSeconds).rounded(.up))
        for record in records { leases[record.id] = Lease(ttl: record.ttl, deadline: nil) }
    }

    /// The store was replaced by a snapshot: these leases exist now. Only
    /// a follower installs snapshots, so none runs a deadline.
    func reset(records: [LeaseRecord]) {
        lock.withLock {
            leases = [:]
            revoking = [:]
            for record in records { leases[record.id] = Lease(ttl: record.ttl, deadline: primary ? clock.now + .seconds(record.ttl) : nil) }
        }
    }

    /// A grant was applied.
    func granted(_ id: Int64, ttl: Int64) {
        lock.withLock {
            leases[id] = Lease(ttl: ttl, deadline: primary ? clock.now + .seconds(ttl) : nil)
        }
    }

    /// A revocation was applied.
    func revoked(_ id: Int64) {
        lock.withLock {
            leases[id] = nil
            revoking[id] = nil
        }
    }

    /// This member became leader: every lease runs from now, plus `extend`.
    func promote(extend seconds: Double) {
        lock.withLock {
            primary = true
            let now = clock.now
            for (id, lease) in leases {
                leases[id]!.deadline = now + .seconds(lease.ttl) + .milliseconds(Int64(seconds * 1000))
            }
        }
    }

    func demote() {
        lock.withLock {
            primary = false
            revoking = [:]
            for id in leases.keys { leases[id]!.deadline = nil }
        }
    }

    /// Keep-alive on the leader: the TTL, or nil for an unknown or expired lease.
    func renew(_ id: Int64) -> Int64? {
        lock.withLock {
            guard primary, let lease = leases[id], let deadline = lease.deadline, deadline > clock.now else { return nil }
            leases[id]!.deadline = clock.now + .seconds(lease.ttl)
            return lease.ttl
        }
    }

    /// Whole seconds left (etcd truncates: 59 just after a 60 s grant) and
    /// the granted TTL; nil for an unknown lease.
    func remaining(_ id: Int64) -> (seconds: Int64, granted: Int64)? {
        lock.withLock {
            guard let lease = leases[id] else { return nil }
            guard let deadline = lease.deadline else { return (lease.ttl, lease.ttl) }
            let left = clock.now.duration(to: deadline)
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            return (max(0, Int64(seconds.rounded(.towardZero))), lease.ttl)
        }
    }

    /// Every lease, soonest to expire first, as etcd lists them
    /// (`leasesByExpiry`); leases without a running deadline last, by ID.
    func ids() -> [Int64] {
        lock.withLock {
            leases.sorted { a, b in
                switch (a.value.deadline, b.value.deadline) {
                case let (x?, y?) where x != y: x < y
                case (_?, nil): true
                case (nil, _?): false
                default: a.key < b.key
                }
            }.map(\.key)
        }
    }

    /// Leases past their deadline that need a revocation proposed (leader only).
    func expired() -> [Int64] {
        lock.withLock {
            guard primary else { return [] }
            let now = clock.now
            var due: [Int64] = []
            for (id, lease) in leases {
                guard let deadline = lease.deadline, deadline <= now else { continue }
                if let proposed = revoking[id], now - proposed < .milliseconds(Int64(Self.revokeRetrySeconds * 1000)) { continue }
                revoking[id] = now
                due.append(id)
            }
            return due.sorted()
        }
    }
}
