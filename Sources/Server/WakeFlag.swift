import Synchronization

/// A flag one thread raises and another reads or lowers, without a lock:
/// a watch stream's pending wake-up (at most one waits, however many
/// revisions arrive), a peer link's stop, a stream's first delivery.
final class WakeFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    /// True when this call raised it (so the caller should wake the stream).
    func raise() -> Bool { !raised.exchange(true, ordering: .acquiringAndReleasing) }

    func lower() { raised.store(false, ordering: .releasing) }

    var isRaised: Bool { raised.load(ordering: .acquiring) }
}
