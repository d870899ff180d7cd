/// One version of a key, as etcd's `mvccpb.KeyValue` describes it.
public struct KeyValue: Sendable, Equatable, CustomStringConvertible {
    public var key: [UInt8]
    public var value: [UInt8]
    /// Main revision of the put that created this generation of the key.
    public var createRevision: Int64
    /// Main revision of the put that wrote this version.
    public var modRevision: Int64
    /// Puts since the key was (re)created, starting at 1.
    public var version: Int64
    public var lease: Int64

    public init(key: [UInt8], value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    public var description: String {
        "\(String(decoding: key, as: UTF8.self))=\(String(decoding: value, as: UTF8.self)) c\(createRevision) m\(modRevision) v\(version)"
            + (lease != 0 ? " lease \(lease)" : "")
    }
}

/// A range request with etcd's semantics for `rangeEnd`: empty means the
/// single key `key`; `[0]` means every key from `key` on; otherwise the
/// half-open interval `[key, rangeEnd)`.
public struct RangeRequest: Sendable, Equatable {
    public var key: [UInt8]
    public var rangeEnd: [UInt8]
    /// The revision to read at; nil reads the current one.
    public var revision: Int64?
    /// The most keys to return; nil returns all. `count` still counts every match.
    public var limit: Int?
    public var countOnly: Bool
    public var keysOnly: Bool
    /// Sort the results; nil leaves them in key order.
    public var sortOrder: SortOrder?
    public var sortTarget = SortTarget.key
    public var minModRevision: Int64?
    public var maxModRevision: Int64?
    public var minCreateRevision: Int64?
    public var maxCreateRevision: Int64?

    public enum SortOrder: Sendable, Equatable { case ascend, descend }
    public enum SortTarget: Sendable, Equatable { case key, version, createRevision, modRevision, value }

    public init(key: [UInt8], rangeEnd: [UInt8] = [], revision: Int64? = nil, limit: Int? = nil, countOnly: Bool = false, keysOnly: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.revision = revision
        self.limit = limit
        self.countOnly = countOnly
        self.keysOnly = keysOnly
    }

    /// Whether `candidate` falls in the requested range.
    public func contains(_ candidate: [UInt8]) -> Bool {
        if rangeEnd.isEmpty { return candidate == key }
        if candidate.lexicographicallyPrecedes(key) { return false }
        if rangeEnd == [0] { return true }
        return candidate.lexicographicallyPrecedes(rangeEnd)
    }

    /// Whether a match may be dropped for its revisions (etcd's min/max
    /// mod and create revision filters), which the key index cannot tell.
    var filtersRevisions: Bool {
        minModRevision != nil || maxModRevision != nil || minCreateRevision != nil || maxCreateRevision != nil
    }

    /// True once keys at or past `candidate` can no longer match.
    func isPastEnd(_ candidate: [UInt8]) -> Bool {
        if rangeEnd.isEmpty { return key.lexicographicallyPrecedes(candidate) }
        if rangeEnd == [0] { return false }
        return !candidate.lexicographicallyPrecedes(rangeEnd)
    }
}

public struct RangeResult: Sendable, Equatable {
    public var kvs: [KeyValue]
    public var count: Int
    public var more: Bool
    /// The store's current revision when the read ran (the response header's).
    public var revision: Int64

    public init(kvs: [KeyValue], count: Int, more: Bool, revision: Int64) {
        self.kvs = kvs
        self.count = count
        self.more = more
        self.revision = revision
    }
}

/// etcd's put flags: keep the key's current value or lease.
public struct PutOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Keep the current value (the key must exist; give no value).
    public static let ignoreValue = PutOptions(rawValue: 1)
    /// Keep the current lease (the key must exist; give lease 0).
    public static let ignoreLease = PutOptions(rawValue: 2)
}

/// One write of a batch that becomes one revision.
public enum WriteOperation: Sendable, Equatable {
    case put(key: [UInt8], value: [UInt8], lease: Int64, options: PutOptions = [])
    case deleteRange(key: [UInt8], rangeEnd: [UInt8])
}

/// What one write did.
public enum WriteOutcome: Sendable, Equatable {
    case put(previous: KeyValue?)
    case deleted([KeyValue])
}
