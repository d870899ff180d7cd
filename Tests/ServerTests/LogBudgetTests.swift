import Foundation
@testable import Server
import Testing

/// A warning a stranger can trigger keeps to its budget per second, and
/// the first line after says how many were left out.
@Suite struct LogBudgetTests {
    @Test func linesPastTheBudgetAreCountedAndReported() throws {
        let budget = LogBudget(linesPerSecond: 3)
        // Start at the beginning of a second, so the burst fits in one.
        let start = Date().timeIntervalSince1970
        usleep(UInt32((1 - (start - start.rounded(.down))) * 1_000_000) + 10_000)
        let burst = (0..<10).map { _ in budget.spend() }
        #expect(burst.map(\.logs) == [true, true, true] + Array(repeating: false, count: 7))
        #expect(burst.allSatisfy { $0.unloggedBefore == 0 })
        sleep(1)
        let next = budget.spend()
        #expect(next.logs && next.unloggedBefore == 7)
        #expect(budget.spend().unloggedBefore == 0)
    }
}
