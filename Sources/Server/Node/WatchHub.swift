import Foundation

/// Tells watch streams that the store has new revisions. Carries no
/// events: each stream reads what it needs from the store itself, so a slow
/// watcher costs a position, never a growing buffer.
final class WatchHub: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: @Sendable () -> Void] = [:]
    private var next: UInt64 = 0

    func subscribe(_ wake: @escaping @Sendable () -> Void) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        subscribers[next] = wake
        return next
    }

    func unsubscribe(_ token: UInt64) {
        lock.lock()
        subscribers[token] = nil
        lock.unlock()
    }

    /// Whether any watch stream follows the store.
    var isWatched: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !subscribers.isEmpty
    }

    func notify() {
        lock.lock()
        let all = Array(subscribers.values)
        lock.unlock()
        for wake in all { wake() }
    }
}
