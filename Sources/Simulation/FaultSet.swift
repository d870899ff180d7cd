/// The kinds of fault a run may inject; each run draws its rates from its seed.
public struct FaultSet: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let drop = FaultSet(rawValue: 1 << 0)
    public static let duplicate = FaultSet(rawValue: 1 << 1)
    public static let delay = FaultSet(rawValue: 1 << 2)
    public static let reorder = FaultSet(rawValue: 1 << 3)
    public static let partition = FaultSet(rawValue: 1 << 4)
    public static let oneWay = FaultSet(rawValue: 1 << 5)
    public static let crash = FaultSet(rawValue: 1 << 6)
    public static let tornWrite = FaultSet(rawValue: 1 << 7)
    public static let skew = FaultSet(rawValue: 1 << 8)
    public static let membership = FaultSet(rawValue: 1 << 9)
    public static let transfer = FaultSet(rawValue: 1 << 10)
    public static let compaction = FaultSet(rawValue: 1 << 11)

    public static let named: [(String, FaultSet)] = [
        ("drop", .drop), ("duplicate", .duplicate), ("delay", .delay), ("reorder", .reorder),
        ("partition", .partition), ("one-way", .oneWay), ("crash", .crash), ("torn-write", .tornWrite),
        ("skew", .skew), ("membership", .membership), ("transfer", .transfer), ("compaction", .compaction),
    ]

    public static let all = FaultSet(named.map(\.1))
    public static let none: FaultSet = []

    /// Parses a comma-separated list of fault names, `all` or `none`.
    public init(parsing list: String) throws(FaultSetError) {
        var set = FaultSet()
        for name in list.split(separator: ",").map({ String($0).trimmingWhitespace }) where !name.isEmpty {
            if name == "all" {
                set.formUnion(.all)
            } else if name == "none" {
                continue
            } else if let (_, fault) = Self.named.first(where: { $0.0 == name }) {
                set.insert(fault)
            } else {
                throw .unknown(name)
            }
        }
        self = set
    }

    public var description: String {
        if self == .all { return "all" }
        let names = Self.named.filter { contains($0.1) }.map(\.0)
        return names.isEmpty ? "none" : names.joined(separator: ",")
    }
}

public enum FaultSetError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknown(String)
    public var description: String {
        "unknown fault '\(self.name)'; known: all, none, " + FaultSet.named.map(\.0).joined(separator: ", ")
    }
    private var name: String {
        switch self { case .unknown(let n): n }
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
