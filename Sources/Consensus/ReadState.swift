/// The answer to a linearizable read request: once the local state machine
/// has applied `index`, a read tagged `context` may be served from it.
public struct ReadState: Sendable, Equatable, CustomStringConvertible {
    public var context: UInt64
    public var index: LogIndex

    public init(context: UInt64, index: LogIndex) {
        self.context = context
        self.index = index
    }

    public var description: String { "read(\(context)@\(index))" }
}
