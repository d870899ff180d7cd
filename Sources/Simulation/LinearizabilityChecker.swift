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
//
// Timed-out writes (no response) may take effect at any point after their
// invoke, or never. The search treats them as operations with an infinite
// response that need not be linearized, plus sound reductions that stop each
// of them from multiplying the search (see `KeySearch`), so a history with
// many timeouts is still refuted quickly when it is wrong.
//
// Cost: per key, worst case exponential in the number of mutually concurrent
// operations (the problem is NP-complete: Gibbons & Korach 1997); the cache
// never revisits a configuration. With little concurrency per key a history
// of n operations takes about n steps, each O(concurrent window + matching
// pending writes), plus a cache entry holding only the ragged window of the
// linearized set. `stepBudget` bounds the steps per key.

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
        let q = LinearizabilityChecker.Format.quoted
        return switch self {
        case .put(let key, let value): "put(\(q(key)), \(q(value)))"
        case .get(let key): "get(\(q(key)))"
        case .cas(let key, let expected, let new): "cas(\(q(key)), expected: \(q(expected)), new: \(q(new)))"
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
        case .value(let value): "value(\(LinearizabilityChecker.Format.quoted(value)))"
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
/// hanging the simulator. `.linearizable` is only ever returned when a
/// linearization was actually found for every key.
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
        precondition((op.response == nil) == (op.result == nil), "result must be nil iff response is nil: \(Format.line(op))")
        if let response = op.response {
            precondition(response >= op.invoke, "response before invoke: \(Format.line(op))")
        }
        switch (op.operation, op.result) {
        case (_, nil), (.put, .ok?), (.get, .value?), (.cas, .swapped?): break
        default: preconditionFailure("result kind does not match the operation: \(Format.line(op))")
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

        /// The same set in the compact form stored in the cache. The search
        /// linearizes roughly in invoke order, so a set is a long run of
        /// members, a short ragged window, then nothing; storing only the
        /// window keeps the cache small on long histories. `fullWordsAtLeast`
        /// is a number of leading words known to be all members.
        func compacted(fullWordsAtLeast hint: Int) -> CompactSet {
            var low = hint
            while low < words.count && words[low] == .max { low += 1 }
            var high = words.count
            while high > low && words[high - 1] == 0 { high -= 1 }
            return CompactSet(fullWords: low, window: Array(words[low..<high]))
        }
    }

    /// An `OperationSet` as a count of leading all-member words and the words
    /// after them up to the last member. Canonical: `window` neither starts
    /// with an all-member word nor ends with an empty one, so equal sets have
    /// equal forms.
    fileprivate struct CompactSet: Hashable {
        var fullWords: Int
        var window: [UInt64]
    }

    /// The part of a search configuration that must match exactly for one
    /// configuration to stand in for another: which completed operations are
    /// linearized, and the register value.
    fileprivate struct CacheKey: Hashable {
        var done: CompactSet
        var state: String?
    }

    /// Set right after a pending write took effect: which operations may
    /// follow it is then limited (reductions 2 and 3 in `KeySearch`), and the
    /// limit depends only on that write and the register value before it.
    fileprivate struct Restriction: Equatable {
        /// The pending write just linearized (search numbering).
        var operation: Int
        var stateBefore: String?
    }

    /// A configuration explored to the end without finding a linearization.
    fileprivate struct FailedConfiguration {
        /// Pending writes that had taken effect.
        var applied: OperationSet
        var restriction: Restriction?

        /// True when every way to finish from the other configuration (same
        /// `CacheKey`) is also a way to finish from this one, so the other
        /// must fail too. Having applied fewer pending writes only leaves more
        /// candidates (pending ops never bound anyone's response) and the
        /// model state is the same; no restriction allows everything, and an
        /// identical restriction allows the same operations.
        func covers(applied otherApplied: OperationSet, restriction otherRestriction: Restriction?) -> Bool {
            applied.isSubset(of: otherApplied) && (restriction == nil || restriction == otherRestriction)
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
        /// Set when `operation` was a pending write.
        var restriction: Restriction?
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
    /// exhaustive re-search of the rest of the history. Three sound
    /// reductions keep this in check. Each discards only linearizations that
    /// can be rewritten into another one, so if any linearization exists, one
    /// obeying all three exists and the search finds it (a fourth,
    /// `hasFollower`, only skips writes whose next configuration would fail
    /// at once under these three):
    ///
    /// 1. A pending write that leaves the register unchanged (a put of the
    ///    current value, a cas whose expectation fails) is never tried: it is
    ///    indistinguishable from the write never taking effect. Rewrite: drop it.
    /// 2. A pending write is never immediately followed by a put (completed or
    ///    pending): the put overwrites whatever the pending write did.
    ///    Rewrite: drop the pending write; every other operation sees the same
    ///    states, and removing an operation never breaks a real-time
    ///    constraint (pending writes need not be linearized at all).
    /// 3. A pending write `w` is never immediately followed by a completed
    ///    operation `x` that commutes with it from the current state (`x`
    ///    is legal before `w` too, and both orders end in the same state).
    ///    Rewrite: swap them. Moving a pending write later is always allowed
    ///    (it has no response to respect), and `x` stays a candidate one step
    ///    earlier (pending writes never lower the response bound).
    ///
    /// The rewrites terminate: each drop shortens the linearization, and each
    /// swap removes one (pending before completed) pair without adding any.
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
        /// Positions in `pending` of the cas operations, by expected value, in invoke order.
        let pendingCasByExpected: [String?: [Int]]
        /// Positions in `pending` of the puts, by value, in invoke order.
        let pendingPutsByValue: [String: [Int]]
        /// Positions in `pending` of the cas operations, by new value, in invoke order.
        let pendingCasByNew: [String: [Int]]
        /// Positions in `pending` of the writes whose new value some pending cas expects.
        let pendingEnablingPendingCas: [Int]

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
            var pendingCasByExpected: [String?: [Int]] = [:]
            var pendingPutsByValue: [String: [Int]] = [:]
            var pendingCasByNew: [String: [Int]] = [:]
            for (position, op) in pending.enumerated() {
                switch op.operation {
                case .get:
                    preconditionFailure("pending gets are dropped before the search")
                case .put(_, let value):
                    pendingPutsByValue[value, default: []].append(position)
                case .cas(_, let expected, let new):
                    pendingCasByExpected[expected, default: []].append(position)
                    pendingCasByNew[new, default: []].append(position)
                }
            }
            self.pendingCasByExpected = pendingCasByExpected
            self.pendingPutsByValue = pendingPutsByValue
            self.pendingCasByNew = pendingCasByNew
            let pendingOperations = pending
            pendingEnablingPendingCas = pendingOperations.indices.filter { position in
                switch pendingOperations[position].operation {
                case .put(_, let value), .cas(_, _, let value): pendingCasByExpected[value] != nil
                case .get: false
                }
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

        /// Whether `x` may directly follow the pending write of `restriction`
        /// (reductions 2 and 3).
        func mayFollow(_ x: Int, _ restriction: Restriction) -> Bool {
            let op = operation(x)
            if Self.isPut(op) { return false }
            if isPending(x) { return true }
            let w = operation(restriction.operation)
            guard case .legal(let afterX) = Self.apply(op, to: restriction.stateBefore),
                  case .legal(let afterXW) = Self.apply(w, to: afterX),
                  case .legal(let afterW) = Self.apply(w, to: restriction.stateBefore),
                  case .legal(let afterWX) = Self.apply(op, to: afterW)
            else { return true }
            return afterXW != afterWX
        }

        /// Wing & Gong's rule: an operation may take effect next iff no
        /// not-yet-linearized operation had already responded before it was
        /// invoked, i.e. its invoke <= the minimum response among the
        /// unlinearized completed operations. Equal times count as concurrent.
        /// Pending writes have response = +infinity: they never make anyone
        /// wait, and are candidates from their invoke on. Completed operations
        /// come first (invoke order), then pending writes (invoke order), so
        /// the search tries "the write never happened" before "it happened
        /// here". A `restriction` drops operations by reductions 2 and 3, and
        /// pending writes are offered only under reductions 1 and 4.
        ///
        /// `doneLow` and `responseLow` are the parent's scan positions; they
        /// only move forward along a search path, so each frame resumes from
        /// its parent's and scans just the window of concurrent operations.
        func candidates(_ progress: Progress, state: String?, restriction: Restriction?,
                        doneLow: inout Int, responseLow: inout Int) -> [Int] {
            while responseLow < byResponse.count && progress.done.contains(byResponse[responseLow]) { responseLow += 1 }
            guard responseLow < byResponse.count else { return [] }
            let limit = completed[byResponse[responseLow]].response!
            while doneLow < completed.count && progress.done.contains(doneLow) { doneLow += 1 }
            var window: [Int] = []
            var index = doneLow
            while index < completed.count && completed[index].invoke <= limit {
                if !progress.done.contains(index) { window.append(index) }
                index += 1
            }
            var result = restriction.map { r in window.filter { mayFollow($0, r) } } ?? window
            let (positions, everyWriteHasFollower) = pendingWorthLookingAt(window: window, state: state, limit: limit)
            for position in positions {
                let op = pending[position]
                let index = completed.count + position
                if progress.applied.contains(position) { continue }
                if let restriction, !mayFollow(index, restriction) { continue }
                // Reduction 1, applied here so useless writes cost no steps.
                guard case .legal(let after) = Self.apply(op, to: state), after != state else { continue }
                if everyWriteHasFollower
                    || hasFollower(index, from: state, to: after, window: window, progress: progress, limit: limit) {
                    result.append(index)
                }
            }
            return result
        }

        /// Positions of the pending writes (invoked by `limit`, in invoke order)
        /// that can pass `hasFollower`: a superset, found through indexes so
        /// that long-pending writes are not rescanned at every step. The flag
        /// says every write that changes the register has a follower.
        ///
        /// After pending write `w` takes the register from `state` to `a`
        /// (`a != state`), the possible followers are: a completed get that
        /// read `a`; a completed successful cas that expected `a`; a
        /// completed failed cas that expected `state` (it is illegal now and
        /// legal after any change: then every write qualifies); a pending cas
        /// that expects `a`. Completed puts and pending puts never follow.
        func pendingWorthLookingAt(window: [Int], state: String?, limit: UInt64) -> ([Int], Bool) {
            var positions: [Int] = []
            var anyWrite = false
            for x in window {
                switch (completed[x].operation, completed[x].result) {
                case (.get, .value(let observed?)?):
                    positions += pendingPutsByValue[observed] ?? []
                    positions += pendingCasByNew[observed] ?? []
                case (.cas(_, let expected?, _), .swapped(true)?):
                    positions += pendingPutsByValue[expected] ?? []
                    positions += pendingCasByNew[expected] ?? []
                case (.cas(_, let expected, _), .swapped(false)?) where expected == state:
                    anyWrite = true
                default:
                    break
                }
            }
            if anyWrite {
                return (Array(pending.prefix { $0.invoke <= limit }.indices), true)
            }
            positions += pendingEnablingPendingCas
            positions.sort()
            var unique: [Int] = []
            for position in positions where pending[position].invoke <= limit && unique.last != position {
                unique.append(position)
            }
            return (unique, false)
        }

        /// Reduction 4: a pending write is worth trying only if something
        /// could take effect right after it, under reductions 1 to 3: a
        /// completed operation of the window that is legal after it and does
        /// not commute with it, or an available pending cas that it enables.
        /// (Any other pending op after it is a put, excluded by 2, or a cas
        /// that changes nothing, excluded by 1.) Without a follower the
        /// configuration after the write would fail at once, since it has
        /// completed operations left (otherwise the search already succeeded).
        func hasFollower(_ write: Int, from before: String?, to after: String?,
                         window: [Int], progress: Progress, limit: UInt64) -> Bool {
            let restriction = Restriction(operation: write, stateBefore: before)
            for x in window where mayFollow(x, restriction) {
                if case .legal = Self.apply(completed[x], to: after) { return true }
            }
            for position in pendingCasByExpected[after] ?? [] where completed.count + position != write {
                let op = pending[position]
                if op.invoke > limit { break }
                guard !progress.applied.contains(position), case .cas(_, _, let new) = op.operation else { continue }
                if new != after { return true }
            }
            return false
        }

        /// At most this many failed configurations are kept per (completed
        /// set, state), so checking coverage stays cheap when many pending
        /// writes make many variants. Forgetting one only costs pruning,
        /// never correctness.
        static let failedPerKeyLimit = 32

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
            let rootCandidates = candidates(progress, state: nil, restriction: nil, doneLow: &doneLow, responseLow: &responseLow)
            var stack = [Frame(operation: -1, state: nil, restriction: nil, candidates: rootCandidates,
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
                    let entry = FailedConfiguration(applied: progress.applied, restriction: top.restriction)
                    let cacheKey = CacheKey(done: progress.done.compacted(fullWordsAtLeast: top.doneLow / 64), state: top.state)
                    failed[cacheKey, default: []].removeAll { entry.covers(applied: $0.applied, restriction: $0.restriction) }
                    if failed[cacheKey]!.count >= Self.failedPerKeyLimit { failed[cacheKey]!.removeFirst() }
                    failed[cacheKey]!.append(entry)
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
                let restriction = pendingWrite ? Restriction(operation: candidate, stateBefore: top.state) : nil
                progress.insert(candidate)
                if progress.doneCount == completed.count { return .linearizable }
                // Every completed op before the parent's doneLow is still linearized.
                let cacheKey = CacheKey(done: progress.done.compacted(fullWordsAtLeast: top.doneLow / 64), state: state)
                if let seen = failed[cacheKey],
                   seen.contains(where: { $0.covers(applied: progress.applied, restriction: restriction) }) {
                    progress.remove(candidate)
                    continue
                }
                var childDoneLow = top.doneLow
                var childResponseLow = top.responseLow
                let next = candidates(progress, state: state, restriction: restriction,
                                      doneLow: &childDoneLow, responseLow: &childResponseLow)
                stack.append(Frame(operation: candidate, state: state, restriction: restriction, candidates: next,
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
            let stuck = candidates(progress, state: state, restriction: nil, doneLow: &doneLow, responseLow: &responseLow)

            var lines: [String] = []
            lines.append("key \(Format.quoted(key)): no linearization of \(completed.count) completed operation(s)"
                + (pending.isEmpty ? "" : " and \(pending.count) timed-out write(s)"))
            lines.append("longest linearizable prefix orders \(progress.doneCount) completed operation(s), "
                + "leaving the register at \(Format.quoted(state)):")
            let shownPrefix = 20
            if bestPath.count > shownPrefix {
                lines.append("  ... \(bestPath.count - shownPrefix) earlier operation(s) omitted")
            }
            for index in bestPath.suffix(shownPrefix) { lines.append("  " + Format.line(operation(index))) }
            if bestPath.isEmpty { lines.append("  (none)") }
            lines.append("none of these can take effect next:")
            let shownStuck = 50
            for index in stuck.prefix(shownStuck) {
                let why: String
                switch Self.apply(operation(index), to: state) {
                case .illegal: why = "contradicts the register"
                case .legal: why = "allowed here, but every continuation fails"
                }
                lines.append("  " + Format.line(operation(index)) + "  -- " + why)
            }
            if stuck.count > shownStuck { lines.append("  ... \(stuck.count - shownStuck) more omitted") }
            lines.append("\(completed.count - progress.doneCount) completed operation(s) could not be ordered")
            return lines.joined(separator: "\n")
        }
    }
}

// MARK: - Formatting

extension LinearizabilityChecker {
    /// Text for explanations and descriptions (nested so the names cannot
    /// collide with anything else in the module).
    fileprivate enum Format {
        /// One operation on one line: client, times, operation, result.
        static func line(_ op: HistoryOperation) -> String {
            let times = op.response.map { "invoke \(op.invoke), response \($0)" } ?? "invoke \(op.invoke), no response"
            let result = op.result.map { $0.description } ?? "unknown (timed out)"
            return "client \(op.client) [\(times)] \(op.operation) -> \(result)"
        }

        static func quoted(_ value: String?) -> String {
            value.map { "\"\($0)\"" } ?? "absent"
        }
    }
}
