import EtcdAPI
import GRPCCore
import NIOHPACK

/// How fresh a range must be, chosen per read. etcd's `serializable` flag
/// chooses between the first and the third; Ballot's metadata key
/// `ballot-consistency` (the JSON gateway's header of the same name) chooses
/// any of them, so plain etcd clients keep etcd's behaviour. README,
/// "Consistency levels", says what each guarantees and costs.
enum ReadConsistency: Equatable, Sendable {
    /// The default: the leader confirms it still leads after the read
    /// arrived (ReadIndex), and the member serves once it applied that far.
    case linearizable
    /// Linearizable on the assumption that no member's clock runs faster
    /// than `--lease-read-clock-drift-percent` against the leader's: the
    /// leader answers from its lease, with no round of messages. Served as
    /// `linearizable` where lease reads are off (`--lease-reads`).
    case lease
    /// Whatever this member has applied (etcd's `serializable`).
    case serializable
    /// No staler than the bound, from any member (learners too), or refused
    /// with `StaleRead` when this member cannot show it is that fresh.
    case boundedStaleness(StalenessBound)

    static let levelKey = BallotMetadata.consistency
    static let millisecondsKey = BallotMetadata.maxStalenessMilliseconds
    static let revisionsKey = BallotMetadata.maxStalenessRevisions
    /// The keys a JSON gateway request may send as plain headers.
    static let keys = [levelKey, millisecondsKey, revisionsKey]

    /// What a call asked for: the raw values of the three keys, read where
    /// the call arrives and judged by `choose`.
    struct Requested: Sendable, Equatable {
        var level: String?
        var milliseconds: String?
        var revisions: String?

        static let none = Requested()

        init(level: String? = nil, milliseconds: String? = nil, revisions: String? = nil) {
            self.level = level
            self.milliseconds = milliseconds
            self.revisions = revisions
        }

        /// From a call's HTTP/2 headers, in one pass (every Range pays it;
        /// HTTP/2 header names are lower case).
        init(_ headers: HPACKHeaders) {
            self.init()
            for (name, value, _) in headers where name.hasPrefix("ballot-") {
                switch name {
                case levelKey: level = level ?? value
                case millisecondsKey: milliseconds = milliseconds ?? value
                case revisionsKey: revisions = revisions ?? value
                default: break
                }
            }
        }

        init(_ metadata: Metadata) {
            func first(_ key: String) -> String? { metadata[stringValues: key].first { _ in true } }
            self.init(level: first(levelKey), milliseconds: first(millisecondsKey), revisions: first(revisionsKey))
        }

        /// The calling task's (`ReadConsistencyInterceptor`, `UnaryCalls`).
        @TaskLocal static var current = Requested.none
    }

    /// The level a range runs at: the metadata's when it names one, else
    /// etcd's flag. `electionMilliseconds` is the time bound of a bounded
    /// read that gives only revisions: a member that has not confirmed its
    /// place with the leader for that long cannot say how far behind it is.
    static func choose(_ requested: Requested, serializable: Bool, electionMilliseconds: Int) throws(ReadConsistencyError) -> ReadConsistency {
        guard let level = requested.level else {
            if requested.milliseconds != nil || requested.revisions != nil { throw .boundWithoutBoundedLevel }
            return serializable ? .serializable : .linearizable
        }
        let bounded = level == "bounded"
        if !bounded && (requested.milliseconds != nil || requested.revisions != nil) { throw .boundWithoutBoundedLevel }
        switch level {
        case "linearizable": return .linearizable
        case "lease": return .lease
        case "serializable": return .serializable
        case "bounded":
            let milliseconds = try requested.milliseconds.map { text throws(ReadConsistencyError) in
                try number(text, key: millisecondsKey, max: StalenessBound.millisecondsMax)
            }
            let revisions = try requested.revisions.map { text throws(ReadConsistencyError) in
                try number(text, key: revisionsKey, max: StalenessBound.revisionsMax)
            }
            guard milliseconds != nil || revisions != nil else { throw .boundedWithoutBound }
            return .boundedStaleness(StalenessBound(milliseconds: milliseconds ?? UInt64(max(1, electionMilliseconds)),
                                                    revisions: revisions ?? 0))
        default:
            throw .unknownLevel(level)
        }
    }

    private static func number(_ text: String, key: String, max: UInt64) throws(ReadConsistencyError) -> UInt64 {
        guard let value = UInt64(text), value <= max else { throw .badBound(key: key, value: text, max: max) }
        return value
    }
}

/// How stale a bounded-staleness read may be: it reflects every write
/// acknowledged more than `milliseconds` before it was served, but for at
/// most `revisions` of the newest of them.
struct StalenessBound: Equatable, Sendable {
    var milliseconds: UInt64
    var revisions: UInt64

    /// A day: a bound beyond it is a serializable read with extra steps.
    static let millisecondsMax: UInt64 = 86_400_000
    static let revisionsMax: UInt64 = 1 << 40
}

/// Why a read's consistency was refused: the request's fault (bad
/// metadata), or the member's (too far behind for the bound).
enum ReadConsistencyError: Error, Equatable {
    case unknownLevel(String)
    case badBound(key: String, value: String, max: UInt64)
    case boundWithoutBoundedLevel
    case boundedWithoutBound
    /// This member could not show, within the bound's time, that it is as
    /// fresh as the bound asks: `confirmedAgoMilliseconds` since it last
    /// confirmed its place with a leader (nil: never, since it started),
    /// `entriesBehind` what it had still to apply then.
    case stale(bound: StalenessBound, confirmedAgoMilliseconds: UInt64?, entriesBehind: UInt64)

    /// The gRPC status a client sees. A stale member answers UNAVAILABLE,
    /// which etcd's clients take as "try another endpoint".
    var rpcError: RPCError {
        switch self {
        case .unknownLevel(let level):
            RPCError(code: .invalidArgument, message: "ballot: \(ReadConsistency.levelKey) \"\(level)\": the levels are linearizable, lease, serializable and bounded")
        case .badBound(let key, let value, let max):
            RPCError(code: .invalidArgument, message: "ballot: \(key) \"\(value)\": a whole number from 0 to \(max)")
        case .boundWithoutBoundedLevel:
            RPCError(code: .invalidArgument, message: "ballot: \(ReadConsistency.millisecondsKey) and \(ReadConsistency.revisionsKey) need \(ReadConsistency.levelKey): bounded")
        case .boundedWithoutBound:
            RPCError(code: .invalidArgument, message: "ballot: \(ReadConsistency.levelKey) bounded needs \(ReadConsistency.millisecondsKey) or \(ReadConsistency.revisionsKey)")
        case .stale(let bound, let ago, let behind):
            RPCError(code: .unavailable, message: "ballot: this member is staler than the read's bound (\(bound.milliseconds) ms, \(bound.revisions) revisions): "
                + (ago.map { "last confirmed with a leader \($0) ms ago, \(behind) entries behind" } ?? "not confirmed with a leader since it started"))
        }
    }
}

/// Makes a call's requested consistency (`ReadConsistency.Requested`) the
/// handling task's, for the calls grpc-swift serves (the JSON gateway's
/// in-process calls); the client port's unary KV calls read it from their
/// headers (`UnaryCalls`).
struct ReadConsistencyInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let requested = ReadConsistency.Requested(request.metadata)
        if requested == .none { return try await next(request, context) }
        return try await ReadConsistency.Requested.$current.withValue(requested) { try await next(request, context) }
    }
}
