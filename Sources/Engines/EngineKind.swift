/// Which consensus core a member runs. Every member of a cluster runs the
/// same one: the server records it in the data directory and the bootstrap
/// handshake refuses a member that runs the other.
public enum EngineKind: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case raft
    case paxos

    public var description: String { rawValue }

    /// The engine's code in a peer hello.
    public var wireCode: UInt8 {
        switch self {
        case .raft: 0
        case .paxos: 1
        }
    }

    public init?(wireCode: UInt8) {
        guard let kind = Self.allCases.first(where: { $0.wireCode == wireCode }) else { return nil }
        self = kind
    }
}
