import EtcdAPI
import GRPCCore

/// The consistency a read asks for (the server's README, "Consistency
/// levels"): sent as Ballot's `ballot-consistency` metadata, except
/// `serializable`, which is etcd's own flag and works against etcd too.
public enum ReadConsistency: Sendable, Equatable {
    case linearizable
    /// Linearizable from the leader's lease where members run `--lease-reads`.
    case lease
    case serializable
    /// No staler than `maxStaleness` (whole milliseconds), or than
    /// `maxRevisions` behind; refused by a member that cannot show it,
    /// and then retried on another.
    case bounded(maxStaleness: Duration?, maxRevisions: UInt64?)

    /// The metadata that asks for it (none for etcd's levels).
    var metadata: Metadata {
        var metadata = Metadata()
        switch self {
        case .linearizable, .serializable: break
        case .lease: metadata.addString("lease", forKey: BallotMetadata.consistency)
        case .bounded(let staleness, let revisions):
            metadata.addString("bounded", forKey: BallotMetadata.consistency)
            if let staleness {
                let ms = staleness.components.seconds * 1000 + staleness.components.attoseconds / 1_000_000_000_000_000
                metadata.addString(String(max(0, ms)), forKey: BallotMetadata.maxStalenessMilliseconds)
            }
            if let revisions { metadata.addString(String(revisions), forKey: BallotMetadata.maxStalenessRevisions) }
        }
        return metadata
    }

    var isSerializableFlag: Bool { self == .serializable }
}
