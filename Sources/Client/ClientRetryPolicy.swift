import GRPCCore

/// Whether a call may be sent twice: what decides if it is retried after
/// a failure that leaves its fate unknown.
public enum CallSafety: Sendable, Equatable {
    /// Changes nothing: always safe to repeat.
    case read
    /// A write that must not apply twice: repeated only when the member
    /// said nothing was proposed (etcd's "no leader").
    case write
    /// A write the caller says may apply twice (`idempotent: true`): a put
    /// of the same value, a guarded Txn, a delete.
    case idempotentWrite
}

/// When a failed call is tried again, and how long to wait first:
/// exponential backoff with full jitter (a uniform draw from zero to the
/// doubled delay), so clients that failed together do not return together.
public struct ClientRetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included.
    public var attempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public static let attemptsDefault = 6
    public static let attemptsLimit = 100
    public static let baseDelayDefault = Duration.milliseconds(50)
    public static let maxDelayDefault = Duration.seconds(2)
    public static let standard = ClientRetryPolicy(attempts: attemptsDefault, baseDelay: baseDelayDefault, maxDelay: maxDelayDefault)
    /// One attempt: every failure goes to the caller.
    public static let never = ClientRetryPolicy(attempts: 1, baseDelay: baseDelayDefault, maxDelay: maxDelayDefault)

    public init(attempts: Int, baseDelay: Duration, maxDelay: Duration) {
        precondition((1...Self.attemptsLimit).contains(attempts), "attempts are 1 to \(Self.attemptsLimit)")
        precondition(baseDelay >= .zero && maxDelay >= baseDelay, "delays are non-negative, the max at least the base")
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The wait before retry number `retry` (1 for the first retry).
    public func delay(beforeRetry retry: Int, using random: inout some RandomNumberGenerator) -> Duration {
        precondition(retry >= 1, "retries count from 1")
        let ceiling = min(maxDelay, baseDelay * (1 << min(retry - 1, 20)))
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        return nanoseconds <= 0 ? .zero : .nanoseconds(Int64.random(in: 0...nanoseconds, using: &random))
    }

    /// What a failure means for the call and for the member that gave it.
    public struct Verdict: Sendable, Equatable {
        /// Sending the call again (to another member) is safe and may succeed.
        public var retry: Bool
        /// The member could not serve: eject it for a while.
        public var memberUnhealthy: Bool

        public init(retry: Bool, memberUnhealthy: Bool) {
            self.retry = retry
            self.memberUnhealthy = memberUnhealthy
        }
    }

    /// The verdict on `error` for a call of `safety`. Only errors that
    /// prove nothing was proposed let a plain write be repeated; a read,
    /// or a write its caller declared idempotent, is repeated after any
    /// failure of the member or the connection.
    public static func verdict(on error: any Error, safety: CallSafety) -> Verdict {
        guard let error = error as? RPCError else { return Verdict(retry: false, memberUnhealthy: false) }
        let repeatable = safety != .write
        switch error.code {
        case .unavailable:
            switch error.message {
            case "etcdserver: no leader":
                // Nothing was proposed (README, "Errors: what a client may conclude").
                return Verdict(retry: true, memberUnhealthy: true)
            case "etcdserver: request timed out", "etcdserver: leader changed":
                // The member serves; the leader was slow or changed. The write's fate is unknown.
                return Verdict(retry: repeatable, memberUnhealthy: false)
            default:
                // The connection failed, the member is stopping, or it is staler than a read's bound.
                return Verdict(retry: repeatable, memberUnhealthy: true)
            }
        case .deadlineExceeded:
            // No answer in time: a frozen or partitioned member, or a slow one.
            return Verdict(retry: repeatable, memberUnhealthy: true)
        default:
            // The member answered: the request's own fault, or a refusal to take as it is.
            return Verdict(retry: false, memberUnhealthy: false)
        }
    }
}
