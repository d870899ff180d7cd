import EtcdAPI
import Foundation
import GRPCCore
import StateMachine
import Storage

/// One watch stream's watchers and what each has been sent; owned by the
/// stream's sender loop (`WatchService`), which alone calls it.
///
/// Watchers that have been sent everything up to `syncedThrough` form the
/// synced group, served together as etcd's watchable store serves its
/// synced watchers: each new batch of events is read from the store once
/// and handed to the watchers it matches, found by key for single-key
/// watchers and by a range check for the others. A watcher that starts in
/// the past (or that the group passed while it waited) catches up on its
/// own reads, bounded batch by bounded batch, then joins the group. So the
/// cost of a write is one read per stream, not one per watcher, and a
/// stream with thousands of watchers serves them in time.
struct WatchStream {
    let node: Node

    static let watchersMax = 10_000
    static let eventsPerResponseMax = 1_000
    static let progressIntervalSeconds = 10.0 * 60

    struct Watcher {
        var id: Int64
        var range: RangeRequest
        var next: Int64
        var prevKV: Bool
        var noPut: Bool
        var noDelete: Bool
        var progressNotify: Bool
        var lastSent: Date

        func wants(_ event: WatchEvent) -> Bool {
            event.kind == .put ? !noPut : !noDelete
        }
    }

    private(set) var watchers: [Int64: Watcher] = [:]
    /// The revision every synced watcher has been sent everything up to.
    private var syncedThrough: Int64
    /// Synced watchers of one key, by that key.
    private var syncedByKey: [[UInt8]: Set<Int64>] = [:]
    /// Synced watchers of a range of keys.
    private var syncedRanges: Set<Int64> = []
    /// Watchers still reading their own way up to `syncedThrough`.
    private var catchingUp: Set<Int64> = []
    private var nextID: Int64 = 0

    init(node: Node, current: Int64) {
        self.node = node
        self.syncedThrough = current
    }

    private var syncedIsEmpty: Bool { syncedByKey.isEmpty && syncedRanges.isEmpty }

    // MARK: Requests

    mutating func create(_ create: Etcdserverpb_WatchCreateRequest, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        var reply = Etcdserverpb_WatchResponse()
        let current = try node.read { $0.currentRevision }
        reply.header = node.header(revision: current)
        var id = create.watchID
        if id == 0 {
            while watchers[nextID] != nil { nextID += 1 }
            id = nextID
            nextID += 1
        }
        reply.watchID = id
        if watchers[id] != nil || watchers.count >= Self.watchersMax {
            // etcd answers a duplicate id with created and canceled at once.
            reply.created = true
            reply.canceled = true
            reply.cancelReason = watchers[id] != nil ? "etcdserver: duplicate watch ID" : "ballot: too many watchers on one stream"
            try await response.write(reply)
            return
        }
        if let refusal = try await permissionRefusal(create) {
            // etcd's answer: created and canceled at once, the reason as a
            // gRPC status reads, the stream still open.
            reply.watchID = -1
            reply.created = true
            reply.canceled = true
            // etcd 3.4 names these three; any other refusal is "permission denied".
            let shown: AuthFailure = [.invalidAuthToken, .authOldRevision, .userEmpty].contains(refusal) ? refusal : .permissionDenied
            reply.cancelReason = "rpc error: code = \(Self.goCodeName(shown.code)) desc = \(shown.description)"
            let error = RPCError(code: shown.code, message: shown.description)
            node.auditRefusal(error, method: "etcdserverpb.Watch/Watch", token: RequestCredentials.token,
                              commonName: RequestCredentials.commonName, remote: RequestCredentials.clientAddress ?? "unknown")
            try await response.write(reply)
            return
        }
        var range = RangeRequest(key: [UInt8](create.key), rangeEnd: [UInt8](create.rangeEnd))
        range.revision = nil
        watchers[id] = Watcher(
            id: id, range: range, next: create.startRevision > 0 ? create.startRevision : current + 1,
            prevKV: create.prevKv, noPut: create.filters.contains(.noput), noDelete: create.filters.contains(.nodelete),
            progressNotify: create.progressNotify, lastSent: Date())
        catchingUp.insert(id)
        reply.created = true
        try await response.write(reply)
    }

    /// Why the caller may not watch what `create` names (etcd checks read
    /// permission once, at creation; a key from which every key is watched
    /// is checked as that whole span, where etcd 3.4 checked its first key).
    private func permissionRefusal(_ create: Etcdserverpb_WatchCreateRequest) async throws -> AuthFailure? {
        let caller: AuthStore.Caller?
        do {
            caller = try await node.caller()
        } catch EtcdError.auth(let refusal) {
            return refusal
        }
        let key = create.key.isEmpty ? [0] : [UInt8](create.key)
        do {
            try node.checkRead(caller, key: key, rangeEnd: [UInt8](create.rangeEnd))
            return nil
        } catch EtcdError.auth(let refusal) {
            return refusal
        }
    }

    /// Go's name of a gRPC code, as grpc-go's status strings read.
    static func goCodeName(_ code: RPCError.Code) -> String {
        switch code {
        case .unauthenticated: "Unauthenticated"
        case .invalidArgument: "InvalidArgument"
        case .permissionDenied: "PermissionDenied"
        case .failedPrecondition: "FailedPrecondition"
        default: "Unknown"
        }
    }

    mutating func cancel(_ id: Int64, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        guard watchers[id] != nil else { return }
        remove(id)
        var reply = Etcdserverpb_WatchResponse()
        reply.header = node.header(revision: try node.read { $0.currentRevision })
        reply.watchID = id
        reply.canceled = true
        try await response.write(reply)
    }

    private mutating func remove(_ id: Int64) {
        guard let watcher = watchers.removeValue(forKey: id) else { return }
        catchingUp.remove(id)
        syncedRanges.remove(id)
        if watcher.range.rangeEnd.isEmpty {
            syncedByKey[watcher.range.key]?.remove(id)
            if syncedByKey[watcher.range.key]?.isEmpty == true { syncedByKey[watcher.range.key] = nil }
        }
    }

    private mutating func join(_ id: Int64) {
        guard let watcher = watchers[id] else { return }
        catchingUp.remove(id)
        if watcher.range.rangeEnd.isEmpty {
            syncedByKey[watcher.range.key, default: []].insert(id)
        } else {
            syncedRanges.insert(id)
        }
    }

    // MARK: Serving

    /// Send every watcher what the store has for it now: the synced group
    /// first, then each watcher catching up, up to where the group is; with
    /// `progress`, the progress notifications that are due.
    mutating func serve(progress: Bool, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        try await serveSynced(response)
        for id in catchingUp.sorted() {
            guard var watcher = watchers[id] else { continue }
            if watcher.next <= syncedThrough {
                guard try await catchUp(&watcher, to: syncedThrough, response) else {
                    remove(id)
                    continue
                }
                watchers[id] = watcher
            }
            if watcher.next == syncedThrough + 1 { join(id) }
        }
        if progress { try await notifyProgress(response) }
    }

    /// One batch of the group's events: what each watcher gets, and where the batch ends.
    private enum GroupBatch {
        case upToDate(current: Int64)
        case events([Int64: [Mvccpb_Event]], through: Int64, current: Int64)
        case compacted(Int64, current: Int64)
    }

    private mutating func serveSynced(_ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        while true {
            let (byKey, ranges, all, from) = (syncedByKey, syncedRanges, watchers, syncedThrough + 1)
            let batch = try node.read { store throws(StorageError) -> GroupBatch in
                let current = store.currentRevision
                guard from <= current, !(byKey.isEmpty && ranges.isEmpty) else { return .upToDate(current: current) }
                let events: [WatchEvent]
                let through: Int64
                do throws(StorageError) {
                    (events, through) = try Self.batch(store, from: from, range: RangeRequest(key: [0], rangeEnd: [0]), current: current)
                } catch .compacted {
                    return .compacted(store.compactedRevision, current: current)
                }
                var out: [Int64: [Mvccpb_Event]] = [:]
                for event in events {
                    var targets = byKey[event.kv.key] ?? []
                    for id in ranges where all[id]?.range.contains(event.kv.key) == true { targets.insert(id) }
                    var plain: Mvccpb_Event?
                    var withPrevious: Mvccpb_Event?
                    for id in targets {
                        guard let watcher = all[id], watcher.wants(event) else { continue }
                        if watcher.prevKV {
                            if withPrevious == nil { withPrevious = Self.event(event, prevKV: true, store) }
                            out[id, default: []].append(withPrevious!)
                        } else {
                            if plain == nil { plain = Self.event(event, prevKV: false, store) }
                            out[id, default: []].append(plain!)
                        }
                    }
                }
                return .events(out, through: through, current: current)
            }
            switch batch {
            case .upToDate(let current):
                if syncedIsEmpty { syncedThrough = max(syncedThrough, current) }
                return
            case .events(let perWatcher, let through, let current):
                let now = Date()
                for id in perWatcher.keys.sorted() {
                    try await send(perWatcher[id]!, to: id, current: current, response)
                    watchers[id]?.lastSent = now
                }
                // A synced watcher's next revision is the group's; it is
                // written back only if the watcher leaves the group.
                syncedThrough = through
                if through >= current { return }
            case .compacted(let compacted, let current):
                // The group's next revision was compacted before it was sent
                // (a compaction applied between a write and this wake-up):
                // its watchers end as etcd ends a watch from a compacted revision.
                let group = Array(syncedRanges) + syncedByKey.values.flatMap { $0 }
                for id in group.sorted() {
                    remove(id)
                    try await sendCompacted(id, compacted: compacted, response)
                }
                syncedThrough = current
                return
            }
        }
    }

    /// Send one catching-up `watcher` everything from its next revision up
    /// to `limit`; false when its watch ended (its history was compacted).
    private func catchUp(_ watcher: inout Watcher, to limit: Int64, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws -> Bool {
        while watcher.next <= limit {
            let from = watcher.next, snapshot = watcher
            let batch = try node.read { store throws(StorageError) -> CatchUpBatch in
                let current = store.currentRevision
                do throws(StorageError) {
                    let (found, through) = try Self.batch(store, from: from, range: snapshot.range, current: min(limit, current))
                    let events = found.filter(snapshot.wants).map { Self.event($0, prevKV: snapshot.prevKV, store) }
                    return CatchUpBatch(events: events, through: through, current: current, compacted: nil)
                } catch .compacted {
                    return CatchUpBatch(events: [], through: from - 1, current: current, compacted: store.compactedRevision)
                }
            }
            let (events, through, current) = (batch.events, batch.through, batch.current)
            if let compacted = batch.compacted {
                try await sendCompacted(watcher.id, compacted: compacted, response)
                return false
            }
            watcher.next = through + 1
            if !events.isEmpty {
                try await send(events, to: watcher.id, current: current, response)
                watcher.lastSent = Date()
            }
        }
        return true
    }

    /// One read of a catching-up watcher's events.
    private struct CatchUpBatch {
        var events: [Mvccpb_Event]
        var through: Int64
        var current: Int64
        var compacted: Int64?
    }

    /// Events from `from` on, at most a response's worth, never splitting a
    /// revision; and the revision the batch covers through.
    private static func batch(_ store: MVCCStore, from: Int64, range: RangeRequest, current: Int64) throws(StorageError) -> ([WatchEvent], Int64) {
        guard from <= current else { return ([], current) }
        var found = try store.events(from: from, range: range, limit: eventsPerResponseMax).filter { $0.kv.modRevision <= current }
        guard found.count == eventsPerResponseMax, let last = found.last?.kv.modRevision else { return (found, current) }
        let before = found.filter { $0.kv.modRevision < last }
        if before.isEmpty {
            // One revision holds more than a response's worth: take it whole.
            found = try store.events(from: last, range: range, limit: Int.max).filter { $0.kv.modRevision == last }
            return (found, last)
        }
        return (before, last - 1)
    }

    /// An event as etcd sends it: a delete carries only its key and revision.
    private static func event(_ event: WatchEvent, prevKV: Bool, _ store: MVCCStore) -> Mvccpb_Event {
        var out = Mvccpb_Event()
        out.type = event.kind == .put ? .put : .delete
        if event.kind == .delete {
            out.kv.key = Data(event.kv.key)
            out.kv.modRevision = event.kv.modRevision
        } else {
            out.kv = Conversions.keyValue(event.kv)
        }
        if prevKV, event.kv.modRevision > 1 {
            let previous = RangeRequest(key: event.kv.key, revision: event.kv.modRevision - 1)
            if let kv = try? store.range(previous).kvs.first { out.prevKv = Conversions.keyValue(kv) }
        }
        return out
    }

    private func send(_ events: [Mvccpb_Event], to id: Int64, current: Int64, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        var reply = Etcdserverpb_WatchResponse()
        reply.header = node.header(revision: current)
        reply.watchID = id
        reply.events = events
        try await response.write(reply)
    }

    /// etcd 3.4's answer for a watch whose start was compacted: canceled,
    /// the compact revision, a header without a revision and no reason
    /// (clients turn the compact revision into their "compacted" error).
    private func sendCompacted(_ id: Int64, compacted: Int64, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        var reply = Etcdserverpb_WatchResponse()
        reply.header = node.header(revision: 0)
        reply.watchID = id
        reply.canceled = true
        reply.compactRevision = compacted
        try await response.write(reply)
    }

    /// etcd's progress notifications: a header-only response to a watcher
    /// that asked for them and was sent nothing for the interval.
    private mutating func notifyProgress(_ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws {
        let now = Date()
        for id in watchers.keys.sorted() {
            guard let watcher = watchers[id], watcher.progressNotify,
                  now.timeIntervalSince(watcher.lastSent) >= Self.progressIntervalSeconds else { continue }
            var reply = Etcdserverpb_WatchResponse()
            reply.header = node.header(revision: try node.read { $0.currentRevision })
            reply.watchID = id
            try await response.write(reply)
            watchers[id]?.lastSent = now
        }
    }
}
