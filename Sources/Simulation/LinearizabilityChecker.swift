// Linearizability checking for key-value histories recorded by the simulator.
//
// A history is linearizable (Herlihy & Wing 1990) when every operation can be
// given a single instant between its invocation and its response such that,
// replayed in that order, a sequential register produces exactly the results
// the clients observed. Deciding this is NP-complete in general, so we use the
// standard exhaustive search that is fast in practice:
//
// - Wing & Gong, "Testing and verifying concurrent objects", JPDC 17(1), 1993:
//   depth-first search over the operations that may take effect next,
//   backtracking when the sequential model disagrees with an observed result.
// - Lowe, "Testing for linearizability", CCPE 29(4), 2017: memoize every
//   configuration (set of linearized operations, model state) already
//   explored; reaching it again cannot succeed where it failed before. This
//   is the "WGL" algorithm, also used by porcupine (Athalye).
// - Herlihy & Wing's locality (P-compositionality, Horn & Kroening 2015): a
//   history is linearizable iff each per-object sub-history is, and every
//   operation here touches exactly one key, so each key is searched alone.
//   This turns one exponential search into many small ones.

/// A client request against the replicated store.
public enum KVOperation: Sendable, Equatable, CustomStringConvertible {
    case put(key: String, value: String)
    case get(key: String)
    /// Compare-and-swap: set `new` iff the current value equals `expected` (nil = key absent).
    case cas(key: String, expected: String?, new: String)

    /// The single key the operation touches; the checker splits histories on it.
    public var key: String {
        switch self {
        case .put(let key, _), .get(let key), .cas(let key, _, _): key
        }
    }

    public var description: String {
        switch self {
        case .put(let key, let value): "put(\(quoted(key)), \(quoted(value)))"
        case .get(let key): "get(\(quoted(key)))"
        case .cas(let key, let expected, let new):
            "cas(\(quoted(key)), expected: \(quoted(expected)), new: \(quoted(new)))"
        }
    }
}

/// What the store answered.
public enum KVResult: Sendable, Equatable, CustomStringConvertible {
    /// A put took effect.
    case ok
    /// A get's answer; nil means the key was absent.
    case value(String?)
    /// Whether a cas installed its new value.
    case swapped(Bool)

    public var description: String {
        switch self {
        case .ok: "ok"
        case .value(let value): "value(\(quoted(value)))"
        case .swapped(let swapped): "swapped(\(swapped))"
        }
    }
}

/// One client operation. `response == nil` means the client never learned the outcome
/// (timeout, crash): a write may or may not have taken effect at any point after `invoke`;
/// a get with no response constrains nothing.
public struct HistoryOperation: Sendable, Equatable {
    public var client: Int
    public var operation: KVOperation
    /// Simulated time the client sent the request.
    public var invoke: UInt64
    /// Simulated time the answer arrived (`>= invoke`), nil if it never did.
    public var response: UInt64?
    /// The answer; nil iff `response` is nil.
    public var result: KVResult?

    public init(client: Int, operation: KVOperation, invoke: UInt64, response: UInt64?, result: KVResult?) {
        self.client = client
        self.operation = operation
        self.invoke = invoke
        self.response = response
        self.result = result
    }
}

public enum LinearizabilityVerdict: Sendable, Equatable {
    case linearizable
    /// A readable explanation: the key, and the operations of that key that could not be
    /// ordered (at least the op the search got stuck on), one per line with client,
    /// invoke/response times, op and result.
    case notLinearizable(key: String, explanation: String)
    /// The search for one key exceeded the step budget; neither proven nor refuted.
    case unknown(key: String, stepsUsed: Int)
}

/// Decides whether a recorded key-value history is linearizable.
///
/// Per key, the search is worst-case exponential in the number of mutually
/// concurrent operations (the problem is NP-complete, Gibbons & Korach 1997),
/// but with Lowe's cache it never revisits a (linearized set, register value)
/// configuration, and on realistic histories (little concurrency per key) it
/// is close to linear in the number of operations. Each attempted
/// linearization of one operation costs one step; `stepBudget` bounds the
/// steps per key so a pathological history yields `.unknown` instead of
/// hanging the simulator.
public struct LinearizabilityChecker: Sendable {
    public static let stepBudgetDefault = 2_000_000

    /// Maximum number of attempted linearizations for one key.
    public var stepBudget: Int

    public init(stepBudget: Int = stepBudgetDefault) {
        precondition(stepBudget >= 0, "step budget must not be negative")
        self.stepBudget = stepBudget
    }

    /// Checks every key independently, in sorted key order (deterministic).
    ///
    /// A definite violation outranks an inconclusive key: if one key runs out
    /// of budget and a later key is refuted, the refutation is returned,
    /// because it is the more useful (and still certain) answer. Otherwise the
    /// first `.unknown` is returned; `.linearizable` only when every key is
    /// proven linearizable.
    public func check(_ history: [HistoryOperation]) -> LinearizabilityVerdict {
        var perKey: [String: [HistoryOperation]] = [:]
        for op in history {
            Self.validate(op)
            // A get that never answered observed nothing: it constrains no one.
            if op.response == nil, case .get = op.operation { continue }
            perKey[op.operation.key, default: []].append(op)
        }
        var firstUnknown: LinearizabilityVerdict?
        for key in perKey.keys.sorted() {
            let search = KeySearch(key: key, operations: perKey[key]!)
            switch search.run(stepBudget: stepBudget) {
            case .linearizable:
                continue
            case .violation(let explanation):
                return .notLinearizable(key: key, explanation: explanation)
            case .exhausted(let steps):
                if firstUnknown == nil { firstUnknown = .unknown(key: key, stepsUsed: steps) }
            }
        }
        return firstUnknown ?? .linearizable
    }

    /// A malformed history is a bug in whoever recorded it, not a property of
    /// the system under test: reject it loudly rather than judge it.
    private static func validate(_ op: HistoryOperation) {
        precondition((op.response == nil) == (op.result == nil), "result must be nil iff response is nil: \(line(op))")
        if let response = op.response {
            precondition(response >= op.invoke, "response before invoke: \(line(op))")
        }
        switch (op.operation, op.result) {
        case (_, nil), (.put, .ok?), (.get, .value?), (.cas, .swapped?): break
        default: preconditionFailure("result kind does not match the operation: \(line(op))")
        }
    }
}

// MARK: - Per-key search

extension LinearizabilityChecker {
    fileprivate enum KeyOutcome {
        case linearizable
        case violation(String)
        case exhausted(Int)
    }

    /// The register model's answer to applying one operation.
    fileprivate enum Transition {
        /// The observed result contradicts the model in this state.
        case illegal
        case legal(String?)
    }

    /// A fixed-size set of small integers (operation positions).
    fileprivate struct OperationSet: Hashable {
        private var words: [UInt64]

        init(capacity: Int) { words = Array(repeating: 0, count: (capacity + 63) / 64) }

        func contains(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
        mutating func insert(_ index: Int) { words[index >> 6] |= 1 << UInt64(index & 63) }
        mutating func remove(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }

        /// Both sets must have the same capacity.
        func isSubset(of other: OperationSet) -> Bool {
            for i in words.indices where words[i] & ~other.words[i] != 0 { return false }
            return true
        }
    }

    /// The part of a search configuration that must match exactly for one
    /// configuration to stand in for another: which completed operations are
    /// linearized, and the register value.
    fileprivate struct CacheKey: Hashable {
        var done: OperationSet
        var state: String?
    }

    /// A configuration explored to the end without finding a linearization.
    fileprivate struct FailedConfiguration {
        /// Pending writes that had taken effect.
        var applied: OperationSet
        /// Whether the next operation was barred from being a put (see `KeySearch`).
        var restricted: Bool

        /// True when every way to finish from the other configuration (same
        /// `CacheKey`) is also a way to finish from this one, so the other
        /// must fail too. Having applied fewer pending writes only leaves more
        /// candidates (the pending ops never bound anyone's response), and the
        /// model state is the same; an unrestricted configuration allows
        /// everything a restricted one does.
        func covers(applied otherApplied: OperationSet, restricted otherRestricted: Bool) -> Bool {
            applied.isSubset(of: otherApplied) && (!restricted || otherRestricted)
        }
    }

    /// Which operations of one key are linearized so far.
    fileprivate struct Progress {
        /// Completed operations, by position in `KeySearch.completed`.
        var done: OperationSet
        /// Pending writes, by position in `KeySearch.pending`.
        var applied: OperationSet
        var doneCount = 0
        let completedCount: Int

        init(completedCount: Int, pendingCount: Int) {
            self.completedCount = completedCount
            done = OperationSet(capacity: completedCount)
            applied = OperationSet(capacity: pendingCount)
        }

        mutating func insert(_ index: Int) {
            if index < completedCount {
                done.insert(index)
                doneCount += 1
            } else {
                applied.insert(index - completedCount)
            }
        }

        mutating func remove(_ index: Int) {
            if index < completedCount {
                done.remove(index)
                doneCount -= 1
            } else {
                applied.remove(index - completedCount)
            }
        }
    }

    /// One node of the depth-first search, kept on an explicit stack.
    fileprivate struct Frame {
        /// The operation linearized to reach this node; -1 at the root.
        var operation: Int
        /// Register value after `operation`.
        var state: String?
        /// `operation` was a pending write, so the next one must not be a put.
        var restricted: Bool
        /// Operations that may take effect next.
        var candidates: [Int]
        /// Next index into `candidates` to try.
        var next: Int
        /// Every completed operation before this position (invoke order) is linearized.
        var doneLow: Int
        /// Every completed operation before this position of `byResponse` is linearized.
        var responseLow: Int
    }

    /// The WGL search for one key.
    ///
    /// Operations are numbered: `0..<completed.count` are those with a
    /// response, then `completed.count...` the pending (timed-out) writes.
    ///
    /// Pending writes need care: they may take effect at any time after their
    /// invoke, or never, so each one doubles the configurations a refutation
    /// must rule out, and plain WGL turns every timed-out write into an
    /// exhaustive re-search of the rest of the history. Two sound reductions
    /// keep this in check; both only discard linearizations for which an
    /// equivalent, shorter one (the same without some pending write) exists:
    ///
    /// 1. A pending write that leaves the register unchanged (a put of the
    ///    current value, a cas whose expectation fails) is never tried: it is
    ///    indistinguishable from the write never taking effect.
    /// 2. A pending write is never immediately followed by a put: the put
    ///    overwrites whatever the pending write did, so dropping the pending
    ///    write gives the same states for every other operation (removing an
    ///    operation never breaks a real-time constraint, and pending writes
    ///    need not be linearized). Any linearization can be normalized by
    ///    repeatedly dropping such writes, so one obeying 1 and 2 exists
    ///    whenever any does.
    ///
    /// Lowe's cache is then generalized from equal configurations to covered
    /// ones (`FailedConfiguration.covers`): with no pending writes it is
    /// exactly Lowe's (linearized set, state) cache.
    fileprivate struct KeySearch {
        let key: String
        /// Operations with a response, sorted by invoke, then response, then recording order.
        let completed: [HistoryOperation]
        /// Positions in `completed`, sorted by response, then position.
        let byResponse: [Int]
        /// Writes without a response, sorted by invoke, then recording order.
        let pending: [HistoryOperation]

        init(key: String, operations: [HistoryOperation]) {
            self.key = key
            let completed = operations.indices.filter { operations[$0].response != nil }.sorted { a, b in
                let x = operations[a], y = operations[b]
                if x.invoke != y.invoke { return x.invoke < y.invoke }
                if x.response! != y.response! { return x.response! < y.response! }
                return a < b
            }.map { operations[$0] }
            self.completed = completed
            byResponse = completed.indices.sorted { a, b in
                completed[a].response! != completed[b].response!
                    ? completed[a].response! < completed[b].response! : a < b
            }
            pending = operations.indices.filter { operations[$0].response == nil }.sorted { a, b in
                operations[a].invoke != operations[b].invoke ? operations[a].invoke < operations[b].invoke : a < b
            }.map { operations[$0] }
            for op in pending {
                if case .get = op.operation { preconditionFailure("pending gets are dropped before the search") }
            }
        }

        func operation(_ index: Int) -> HistoryOperation {
            index < completed.count ? completed[index] : pending[index - completed.count]
        }

        func isPending(_ index: Int) -> Bool { index >= completed.count }

        /// The sequential register, the specification the history must match.
        /// Operations without a response have no observed result to match:
        /// a pending put or cas simply takes effect when linearized (a pending
        /// cas thus "succeeds" iff the register holds `expected` at that point,
        /// which covers both outcomes the client could not see).
        static func apply(_ op: HistoryOperation, to state: String?) -> Transition {
            switch op.operation {
            case .put(_, let value):
                return .legal(value)
            case .get:
                guard case .value(let observed)? = op.result else {
                    preconditionFailure("a get in the search always has a value result")
                }
                return observed == state ? .legal(state) : .illegal
            case .cas(_, let expected, let new):
                let swaps = state == expected
                switch op.result {
                case nil: return .legal(swaps ? new : state)
                case .swapped(let reported)?:
                    guard reported == swaps else { return .illegal }
                    return .legal(swaps ? new : state)
                default: preconditionFailure("result kinds are validated before the search")
                }
            }
        }

        static func isPut(_ op: HistoryOperation) -> Bool {
            if case .put = op.operation { return true }
            return false
        }

        /// Wing & Gong's rule: an operation may take effect next iff no
        /// not-yet-linearized operation had already responded before it was
        /// invoked, i.e. its invoke <= the minimum response among the
        /// unlinearized completed operations. Equal times count as concurrent.
        /// Pending writes have response = +infinity: they never make anyone
        /// wait, and are candidates from their invoke on. Completed operations
        /// come first (invoke order), then pending writes (invoke order), so
        /// the search tries "the write never happened" before "it happened
        /// here". `restricted` drops puts (reduction 2 above).
        ///
        /// `doneLow` and `responseLow` are the parent's scan positions; they
        /// only move forward along a search path, so each frame resumes from
        /// its parent's and scans just the window of concurrent operations.
        func candidates(_ progress: Progress, restricted: Bool, doneLow: inout Int, responseLow: inout Int) -> [Int] {
            while responseLow < byResponse.count && progress.done.contains(byResponse[responseLow]) { responseLow += 1 }
            guard responseLow < byResponse.count else { return [] }
            let limit = completed[byResponse[responseLow]].response!
            while doneLow < completed.count && progress.done.contains(doneLow) { doneLow += 1 }
            var result: [Int] = []
            var index = doneLow
            while index < completed.count && completed[index].invoke <= limit {
                if !progress.done.contains(index) && !(restricted && Self.isPut(completed[index])) {
                    result.append(index)
                }
                index += 1
            }
            for (position, op) in pending.enumerated() {
                if op.invoke > limit { break }
                if !progress.applied.contains(position) && !(restricted && Self.isPut(op)) {
                    result.append(completed.count + position)
                }
            }
            return result
        }

        /// WGL depth-first search with an explicit stack (no recursion).
        ///
        /// Success means every operation WITH a response is linearized.
        /// Pending writes left over are writes that never took effect, which
        /// is always allowed (the client never learned otherwise), so they
        /// need not be linearized.
        func run(stepBudget: Int) -> KeyOutcome {
            if completed.isEmpty { return .linearizable }

            var progress = Progress(completedCount: completed.count, pendingCount: pending.count)
            var steps = 0
            var failed: [CacheKey: [FailedConfiguration]] = [:]
            var doneLow = 0
            var responseLow = 0
            let rootCandidates = candidates(progress, restricted: false, doneLow: &doneLow, responseLow: &responseLow)
            var stack = [Frame(operation: -1, state: nil, restricted: false, candidates: rootCandidates,
                               next: 0, doneLow: doneLow, responseLow: responseLow)]
            // The deepest point reached (most completed operations linearized), for the explanation.
            var bestDone = 0
            var bestPath: [Int] = []

            while let top = stack.last {
                if top.next == top.candidates.count {
                    // Explored to the end without success. Remember it (Lowe's
                    // memoization), then undo its operation. Only finished
                    // configurations are recorded; an unfinished one can never
                    // be met again below itself, since every step down adds
                    // an operation.
                    let entry = FailedConfiguration(applied: progress.applied, restricted: top.restricted)
                    let cacheKey = CacheKey(done: progress.done, state: top.state)
                    failed[cacheKey, default: []].removeAll { entry.covers(applied: $0.applied, restricted: $0.restricted) }
                    failed[cacheKey, default: []].append(entry)
                    stack.removeLast()
                    if top.operation >= 0 { progress.remove(top.operation) }
                    continue
                }
                let candidate = top.candidates[top.next]
                stack[stack.count - 1].next += 1

                if steps >= stepBudget { return .exhausted(steps) }
                steps += 1

                let op = operation(candidate)
                guard case .legal(let state) = Self.apply(op, to: top.state) else { continue }
                let pendingWrite = isPending(candidate)
                if pendingWrite && state == top.state { continue }  // reduction 1
                progress.insert(candidate)
                if progress.doneCount == completed.count { return .linearizable }
                if let seen = failed[CacheKey(done: progress.done, state: state)],
                   seen.contains(where: { $0.covers(applied: progress.applied, restricted: pendingWrite) }) {
                    progress.remove(candidate)
                    continue
                }
                var childDoneLow = top.doneLow
                var childResponseLow = top.responseLow
                let next = candidates(progress, restricted: pendingWrite, doneLow: &childDoneLow, responseLow: &childResponseLow)
                stack.append(Frame(operation: candidate, state: state, restricted: pendingWrite, candidates: next,
                                   next: 0, doneLow: childDoneLow, responseLow: childResponseLow))
                if progress.doneCount > bestDone {
                    bestDone = progress.doneCount
                    bestPath = stack.dropFirst().map(\.operation)
                }
            }
            precondition(steps > 0, "a key with completed operations always has a first candidate")
            return .violation(explain(bestPath: bestPath))
        }

        /// Describes the deepest point the search reached: the order that
        /// worked up to there, and the operations none of which could go next.
        func explain(bestPath: [Int]) -> String {
            var progress = Progress(completedCount: completed.count, pendingCount: pending.count)
            var state: String? = nil
            for index in bestPath {
                guard case .legal(let next) = Self.apply(operation(index), to: state) else {
                    preconditionFailure("recorded path must be legal")
                }
                progress.insert(index)
                state = next
            }
            var doneLow = 0
            var responseLow = 0
            // The best path always ends with a completed operation, so the next step is unrestricted.
            let stuck = candidates(progress, restricted: false, doneLow: &doneLow, responseLow: &responseLow)

            var lines: [String] = []
            lines.append("key \(quoted(key)): no linearization of \(completed.count) completed operation(s)"
                + (pending.isEmpty ? "" : " and \(pending.count) timed-out write(s)"))
            lines.append("longest linearizable prefix orders \(progress.doneCount) completed operation(s), "
                + "leaving the register at \(quoted(state)):")
            let shownPrefix = 20
            if bestPath.count > shownPrefix {
                lines.append("  ... \(bestPath.count - shownPrefix) earlier operation(s) omitted")
            }
            for index in bestPath.suffix(shownPrefix) { lines.append("  " + line(operation(index))) }
            if bestPath.isEmpty { lines.append("  (none)") }
            lines.append("none of these can take effect next:")
            let shownStuck = 50
            for index in stuck.prefix(shownStuck) {
                let why: String
                switch Self.apply(operation(index), to: state) {
                case .illegal: why = "contradicts the register"
                case .legal: why = "allowed here, but every continuation fails"
                }
                lines.append("  " + line(operation(index)) + "  -- " + why)
            }
            if stuck.count > shownStuck { lines.append("  ... \(stuck.count - shownStuck) more omitted") }
            lines.append("\(completed.count - progress.doneCount) completed operation(s) could not be ordered")
            return lines.joined(separator: "\n")
        }
    }
}

// MARK: - Formatting

/// One operation on one line: client, times, operation, result.
private func line(_ op: HistoryOperation) -> String {
    let times = op.response.map { "invoke \(op.invoke), response \(String($0))" } ?? "invoke \(op.invoke), no response"
    let result = op.result.map { $0.description } ?? "unknown (timed out)"
    return "client \(op.client) [\(times)] \(op.operation) -> \(result)"
}

private func quoted(_ value: String?) -> String {
    value.map { "\"\($0)\"" } ?? "absent"
}
