/// Bugs a test can switch on in the `Applier`, each one a mistake in the
/// state machine that the simulator's checkers must catch: proof that the
/// simulator runs the server's apply pipeline, not a stand-in.
@_spi(BugInjection)
public enum StateMachineBug: String, Sendable, Equatable, CaseIterable {
    /// A transaction takes its success branch whatever its compares say,
    /// so a compare-and-swap on a stale value succeeds.
    case txnIgnoresCompares = "txn-ignores-compares"
}
