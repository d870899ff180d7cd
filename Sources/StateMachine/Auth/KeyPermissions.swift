import EtcdAPI

/// A user's key permissions as intervals of keys, the union over its
/// roles (etcd's range permission cache): a request is permitted when the
/// intervals of its kind cover every key it names.
///
/// A permission on a key alone covers `[key, key+"\0")`; with `range_end`
/// "\0", every key from `key` on; otherwise `[key, range_end)`.
public struct KeyPermissions: Sendable, Equatable {
    /// One interval `[begin, end)`; a nil `end` is past every key.
    struct Interval: Sendable, Equatable {
        var begin: [UInt8]
        var end: [UInt8]?
    }

    private(set) var read: [Interval] = []
    private(set) var write: [Interval] = []

    public init(roles: [Authpb_Role]) {
        for role in roles {
            for permission in role.keyPermission {
                let interval = Self.interval(key: [UInt8](permission.key), rangeEnd: [UInt8](permission.rangeEnd))
                switch permission.permType {
                case .read: read.append(interval)
                case .write: write.append(interval)
                case .readwrite:
                    read.append(interval)
                    write.append(interval)
                case .UNRECOGNIZED:
                    continue  // etcd grants nothing for a type it does not know
                }
            }
        }
        read.sort { $0.begin.lexicographicallyPrecedes($1.begin) }
        write.sort { $0.begin.lexicographicallyPrecedes($1.begin) }
    }

    static func interval(key: [UInt8], rangeEnd: [UInt8]) -> Interval {
        if rangeEnd.isEmpty { return Interval(begin: key, end: key + [0]) }
        if rangeEnd == [0] { return Interval(begin: key, end: nil) }
        return Interval(begin: key, end: rangeEnd)
    }

    /// Whether the permissions of kind `writing` (else reading) cover the
    /// request's keys: `key` alone when `rangeEnd` is empty, every key from
    /// `key` on when it is "\0", else `[key, rangeEnd)`.
    public func permits(key: [UInt8], rangeEnd: [UInt8], writing: Bool) -> Bool {
        let intervals = writing ? write : read
        if rangeEnd.isEmpty {
            return intervals.contains { interval in
                !key.lexicographicallyPrecedes(interval.begin) && (interval.end.map { key.lexicographicallyPrecedes($0) } ?? true)
            }
        }
        let end: [UInt8]? = rangeEnd == [0] ? nil : rangeEnd
        // Everything in [key, covered) is covered so far; the intervals, in
        // order of their starts, must leave no gap until `end`.
        var covered = key
        for interval in intervals {
            if covered.lexicographicallyPrecedes(interval.begin) { return false }
            guard let intervalEnd = interval.end else { return true }
            if covered.lexicographicallyPrecedes(intervalEnd) { covered = intervalEnd }
            if let end, !covered.lexicographicallyPrecedes(end) { return true }
        }
        return false
    }
}
