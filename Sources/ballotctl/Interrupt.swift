import Dispatch
import Foundation

/// Holding a lock or a leadership until the user lets go: SIGINT or
/// SIGTERM ends the hold, so the command releases what it holds (as
/// etcdctl does on ^C) instead of leaving it to the lease's TTL.
enum Interrupt {
    /// Returns when SIGINT or SIGTERM arrives, or `stillHeld` turns false
    /// (checked every second); true if a signal ended it.
    static func hold(while stillHeld: @escaping @Sendable () -> Bool) async -> Bool {
        let signalled = Locked(false)
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { signalled.withLock { $0 = true } }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        while stillHeld() && !signalled.withLock({ $0 }) {
            try? await Task.sleep(for: .milliseconds(200))
        }
        return signalled.withLock { $0 }
    }
}
