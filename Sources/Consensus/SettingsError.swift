/// Why settings were refused.
public enum SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    case outOfRange(name: String, value: Int, range: ClosedRange<Int>)
    case leaseWithoutCheckQuorum

    public var description: String {
        switch self {
        case .outOfRange(let name, let value, let range):
            "\(name) is \(value); it must lie in \(range.lowerBound)...\(range.upperBound)"
        case .leaseWithoutCheckQuorum:
            "lease-based reads need checkQuorum: without it a deposed leader could serve stale reads"
        }
    }
}
