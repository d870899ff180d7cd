import Foundation
import Synchronization

/// How many lines a kind of warning a stranger can trigger (a refused
/// login, a refused peer connection) may log per second: past the budget
/// the rest are only counted, and the next line logged says how many went
/// unlogged, so a client or a process on the peer port refused in a loop
/// cannot fill the disk.
final class LogBudget: Sendable {
    let linesPerSecond: Int
    private let window = Mutex<(second: Int64, logged: Int, unlogged: Int)>((0, 0, 0))

    /// Audit warnings a second, per kind, by default.
    static let linesPerSecondDefault = 50

    init(linesPerSecond: Int = linesPerSecondDefault) {
        precondition(linesPerSecond > 0)
        self.linesPerSecond = linesPerSecond
    }

    /// Whether a line may be logged now, and if so how many were left out
    /// since the last one logged.
    func spend() -> (logs: Bool, unloggedBefore: Int) {
        let now = Int64(Date().timeIntervalSince1970)
        return window.withLock { window in
            if window.second != now { window = (now, 0, window.unlogged) }
            guard window.logged < linesPerSecond else {
                window.unlogged += 1
                return (false, 0)
            }
            window.logged += 1
            defer { window.unlogged = 0 }
            return (true, window.unlogged)
        }
    }
}
