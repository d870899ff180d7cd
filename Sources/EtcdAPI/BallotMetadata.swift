/// Ballot's own gRPC metadata keys beyond etcd's (README, "Consistency
/// levels"): one spelling for the members that read them and the clients
/// that send them.
public enum BallotMetadata {
    /// The read's level: linearizable, lease, serializable or bounded.
    public static let consistency = "ballot-consistency"
    /// A bounded read's bound in milliseconds, and in revisions.
    public static let maxStalenessMilliseconds = "ballot-max-staleness-ms"
    public static let maxStalenessRevisions = "ballot-max-staleness-revisions"
}
