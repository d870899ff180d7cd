import Synchronization

/// A value shared by reference between tasks and `@Sendable` closures,
/// behind a lock (`Mutex` itself cannot be captured: it is not copyable).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Synchronization.Mutex<Value>

    init(_ value: Value) {
        mutex = Synchronization.Mutex(value)
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try mutex.withLock { value in try body(&value) }
    }
}
