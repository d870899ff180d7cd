/// What the client itself refuses or gives up on; a member's refusal
/// arrives as grpc-swift's `RPCError` with etcd's code and message.
public enum ClientError: Error, Equatable, CustomStringConvertible {
    case badEndpoint(String, reason: String)
    case noEndpoints
    /// A watch's start revision was compacted away while it was resuming.
    case watchCompacted(compactRevision: Int64)
    /// A lease the member no longer knows (expired or revoked).
    case leaseGone(id: Int64)
    /// An STM transaction conflicted more often than its retry limit.
    case transactionConflicts(attempts: Int)

    public var description: String {
        switch self {
        case .badEndpoint(let text, let reason): "bad endpoint \(text): \(reason)"
        case .noEndpoints: "no endpoints given"
        case .watchCompacted(let revision): "the watch's next revision was compacted (compact revision \(revision))"
        case .leaseGone(let id): "lease \(String(id, radix: 16)) not found: expired or revoked"
        case .transactionConflicts(let attempts): "the transaction conflicted \(attempts) times"
        }
    }
}
