@testable import Server
import Testing

@Suite struct ProgressTenthsTests {
    @Test func reportsEachTenthOnceAndTheEnd() {
        var tenths = ProgressTenths(total: 25)
        let reports = (1...25).compactMap { tenths.advance(to: $0) }
        #expect(reports == [12, 20, 32, 40, 52, 60, 72, 80, 92, 100])
        #expect(tenths.advance(to: 25) == nil, "the end is reported once")
    }

    @Test func aBigStepReportsOnceAndAnEmptyTransferIsDoneAtOnce() {
        var big = ProgressTenths(total: 100)
        #expect(big.advance(to: 5) == nil)
        #expect(big.advance(to: 95) == 95)
        #expect(big.advance(to: 99) == nil)
        #expect(big.advance(to: 100) == 100)
        var empty = ProgressTenths(total: 0)
        #expect(empty.advance(to: 0) == 100)
        #expect(empty.advance(to: 0) == nil)
    }
}
