import Dispatch
import Foundation

/// A command that holds a lock or a leadership until the user lets go:
/// SIGINT or SIGTERM ends the hold, or the wait for it, so the command
/// releases what it holds (as etcdctl does on ^C) instead of leaving it to
/// the lease's TTL. Installed before the command asks for anything, so a
/// signal that comes at any moment after is seen.
final class Interrupt: @unchecked Sendable {
    private let signalled = Locked(false)
    private let sources: [any DispatchSourceSignal]
    static let pollInterval = Duration.milliseconds(100)

    init() {
        let signalled = self.signalled
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { signalled.withLock { $0 = true } }
            source.resume()
            return source
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    var happened: Bool { signalled.withLock { $0 } }

    /// `operation`'s result, or nil if a signal came first (the operation
    /// is then cancelled: a lock or campaign call so cancelled takes its
    /// waiting key back).
    func unlessSignalled<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask { [self] in
                while !happened { try await Task.sleep(for: Self.pollInterval) }
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Returns when a signal comes (true) or `stillHeld` turns false (false).
    func hold(while stillHeld: @escaping @Sendable () -> Bool) async -> Bool {
        while stillHeld() && !happened {
            try? await Task.sleep(for: Self.pollInterval)
        }
        return happened
    }
}
