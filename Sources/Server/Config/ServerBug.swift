/// Bugs a test can switch on in a member (`ServerConfig.injectedBug`), each
/// one a mistake the member's crash tests exist to catch: a test that still
/// passes with one switched on proves nothing.
public enum ServerBug: String, Sendable, Equatable, CaseIterable {
    /// Compact the log without first syncing the store (`Node.compactLogIfDue`):
    /// after a power failure the store may lack commits whose entries the
    /// log has already forgotten. The periodic checkpoints, which would
    /// usually happen to cover the compacted entries and hide the bug for
    /// a while, are off with it: the store is flushed only at open.
    case compactsLogBeforeStoreSync = "compacts-log-before-store-sync"
    /// Serve bounded-staleness reads from the store as it is, without the
    /// freshness check (`Node.isFreshEnough`): a member cut off from its
    /// leader then answers them with what it had, however old.
    case servesBoundedReadsUnchecked = "serves-bounded-reads-unchecked"
}
