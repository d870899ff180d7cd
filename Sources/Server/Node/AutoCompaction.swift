/// etcd's automatic history compaction (--auto-compaction-mode and
/// --auto-compaction-retention): the leader proposes a compaction like any
/// client would, so every member compacts the same revision.
public enum AutoCompaction: Sendable, Equatable {
    case off
    /// Keep `seconds` of history: compact to the revision that was current
    /// that long ago, once per `min(retention, 1 h)`.
    case periodic(seconds: Double)
    /// Keep the newest `revisions` revisions, checked every 5 minutes.
    case revision(Int64)

    /// Parse etcd's two flags. Periodic retention is a duration (`30m`,
    /// `1h30m`, `10s`) or a bare number of hours; revision retention is a
    /// count; `0` turns compaction off.
    public init(mode: String, retention: String) throws(ConfigError) {
        switch mode {
        case "periodic":
            if let hours = Double(retention) {
                self = hours == 0 ? .off : .periodic(seconds: hours * 3600)
            } else if let seconds = Self.seconds(retention), seconds > 0 {
                self = .periodic(seconds: seconds)
            } else {
                throw .invalid("--auto-compaction-retention '\(retention)' is not a duration such as 1h, 30m or 10s")
            }
            if case .periodic(let seconds) = self, seconds < 1 {
                throw .invalid("--auto-compaction-retention must be at least 1s")
            }
        case "revision":
            guard let count = Int64(retention), count >= 0 else {
                throw .invalid("--auto-compaction-retention must be a number of revisions in revision mode")
            }
            self = count == 0 ? .off : .revision(count)
        default:
            throw .invalid("--auto-compaction-mode must be periodic or revision")
        }
    }

    /// A Go-style duration: numbers with units h, m, s or ms.
    static func seconds(_ text: String) -> Double? {
        var total = 0.0
        var number = ""
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while let c = rest.first {
            if c.isNumber || c == "." {
                number.append(c)
                rest = rest.dropFirst()
                continue
            }
            guard let value = Double(number) else { return nil }
            number = ""
            if rest.hasPrefix("ms") {
                total += value / 1000
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("h") {
                total += value * 3600
                rest = rest.dropFirst()
            } else if rest.hasPrefix("m") {
                total += value * 60
                rest = rest.dropFirst()
            } else if rest.hasPrefix("s") {
                total += value
                rest = rest.dropFirst()
            } else {
                return nil
            }
        }
        return number.isEmpty ? total : nil
    }
}

/// Decides when to compact and to which revision, from samples of the
/// current revision over time. Pure: the caller supplies the clock.
struct CompactionPlanner {
    let policy: AutoCompaction
    /// (seconds on a monotonic clock, revision then), oldest first.
    private(set) var samples: [(at: Double, revision: Int64)] = []
    private var lastCompaction: Double

    /// How often revision mode looks (etcd's 5 minutes).
    static let revisionCheckSeconds = 300.0
    /// Periodic mode compacts at most this often, however long the retention.
    static let periodicIntervalMaxSeconds = 3600.0

    init(policy: AutoCompaction, now: Double) {
        self.policy = policy
        self.lastCompaction = now
    }

    /// How often the caller should call `due`.
    var pollSeconds: Double {
        switch policy {
        case .off: 1
        case .periodic(let retention): max(0.1, min(retention, Self.periodicIntervalMaxSeconds) / 10)
        case .revision: 1
        }
    }

    /// The revision to compact to now, if any; records that it was chosen.
    mutating func due(now: Double, current: Int64, compacted: Int64) -> Int64? {
        switch policy {
        case .off:
            return nil
        case .periodic(let retention):
            samples.append((now, current))
            // Keep the newest sample at least `retention` old and all after it.
            while samples.count > 1 && now - samples[1].at >= retention { samples.removeFirst() }
            let interval = min(retention, Self.periodicIntervalMaxSeconds)
            guard now - lastCompaction >= interval, let oldest = samples.first, now - oldest.at >= retention else { return nil }
            lastCompaction = now
            return oldest.revision > compacted ? oldest.revision : nil
        case .revision(let keep):
            guard now - lastCompaction >= Self.revisionCheckSeconds else { return nil }
            lastCompaction = now
            let target = current - keep
            return target > compacted ? target : nil
        }
    }
}
