/// When a long transfer (a snapshot sent to a member or a client, or
/// received) has crossed another tenth of its bytes, so that its progress
/// is logged ten times whatever its size.
struct ProgressTenths {
    let total: Int
    private var reported = 0

    init(total: Int) {
        precondition(total >= 0)
        self.total = total
    }

    /// The percentage to report if `done` bytes crossed a tenth not yet
    /// reported (100 once all are done), else nil.
    mutating func advance(to done: Int) -> Int? {
        let tenths = total == 0 ? 10 : min(10, done * 10 / total)
        guard tenths > reported else { return nil }
        reported = tenths
        return total == 0 ? 100 : done * 100 / total
    }
}
