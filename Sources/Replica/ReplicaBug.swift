/// Ordering bugs a test can switch on in `ReplicaDriver`, each one a
/// mistake the simulator's checkers must catch.
@_spi(BugInjection)
public enum ReplicaBug: String, Sendable, Equatable, CaseIterable {
    /// Send votes and append acknowledgements as soon as the writes they
    /// promise are queued, before the disk made them durable: a crash then
    /// takes back a promise a leader already counted.
    case acknowledgesBeforePersist = "acknowledges-before-persist"
}
