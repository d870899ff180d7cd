/// A member of a consensus group. Ids are never reused: a removed member that
/// comes back joins under a new id, so stale messages can never be mistaken
/// for the new member's.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A Raft term: a logical clock that orders leaderships. At most one leader
/// exists per term (Raft §5.2), which is what makes a term a fencing token.
public struct Term: Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public static let zero = Term(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var next: Term { Term(rawValue + 1) }
    public var description: String { String(rawValue) }
}

/// A position in the replicated log. Index 0 is the empty prefix; the first
/// entry is at index 1.
public struct LogIndex: Hashable, Comparable, Strideable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public static let zero = LogIndex(0)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public func distance(to other: LogIndex) -> Int64 {
        Int64(bitPattern: other.rawValue &- rawValue)
    }
    public func advanced(by n: Int64) -> LogIndex { LogIndex(UInt64(Int64(rawValue) + n)) }
    public static func + (a: LogIndex, b: UInt64) -> LogIndex { LogIndex(a.rawValue + b) }
    public static func - (a: LogIndex, b: UInt64) -> LogIndex {
        precondition(a.rawValue >= b, "log index underflow: \(a) - \(b)")
        return LogIndex(a.rawValue - b)
    }
    public var description: String { String(rawValue) }
}
