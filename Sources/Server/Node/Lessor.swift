import Foundation
import Storage

/// When leases expire. Grants and revocations are replicated; expiry is
/// decided by the leader alone from its clock, as in etcd: a new leader
/// starts every lease afresh, extended by an election timeout, so no lease
/// expires because of the election itself. Followers track which leases
/// exist but never expire one.
final class Lessor: @unchecked Sendable {
    struct Lease {
        var ttl: Int64
        var deadline: Date
    }

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
    private var revoking: [Int64: Date] = [:]

    init(records: [LeaseRecord], electionSeconds: Double) {
        minimumTTL = Int64((1.5 * electionSeconds).rounded(.up))
        for record in records { leases[record.id] = Lease(ttl: record.ttl, deadline: .distantFuture) }
    }

    /// A grant was applied.
    func granted(_ id: Int64, ttl: Int64) {
        lock.withLock {
            leases[id] = Lease(ttl: ttl, deadline: primary ? Date().addingTimeInterval(Double(ttl)) : .distantFuture)
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
            let now = Date()
            for (id, lease) in leases {
                leases[id]!.deadline = now.addingTimeInterval(Double(lease.ttl) + seconds)
            }
        }
    }

    func demote() {
        lock.withLock {
            primary = false
            revoking = [:]
            for id in leases.keys { leases[id]!.deadline = .distantFuture }
        }
    }

    /// Keep-alive on the leader: the TTL, or nil for an unknown or expired lease.
    func renew(_ id: Int64) -> Int64? {
        lock.withLock {
            guard primary, let lease = leases[id], lease.deadline > Date() else { return nil }
            leases[id]!.deadline = Date().addingTimeInterval(Double(lease.ttl))
            return lease.ttl
        }
    }

    /// Seconds left (rounded up) and the granted TTL; nil for an unknown lease.
    func remaining(_ id: Int64) -> (seconds: Int64, granted: Int64)? {
        lock.withLock {
            guard let lease = leases[id] else { return nil }
            let left = lease.deadline == .distantFuture ? Double(lease.ttl) : lease.deadline.timeIntervalSinceNow
            return (max(0, Int64(left.rounded(.up))), lease.ttl)
        }
    }

    func exists(_ id: Int64) -> Bool { lock.withLock { leases[id] != nil } }

    var isPrimary: Bool { lock.withLock { primary } }

    func ids() -> [Int64] { lock.withLock { leases.keys.sorted() } }

    /// Leases past their deadline that need a revocation proposed (leader only).
    func expired(now: Date = Date()) -> [Int64] {
        lock.withLock {
            guard primary else { return [] }
            var due: [Int64] = []
            for (id, lease) in leases where lease.deadline <= now {
                if let proposed = revoking[id], now.timeIntervalSince(proposed) < Self.revokeRetrySeconds { continue }
                revoking[id] = now
                due.append(id)
            }
            return due.sorted()
        }
    }
}
