import EtcdAPI
import Foundation
import GRPCCore
import Storage

/// etcd's Watch service: one bidirectional stream carries many watches.
///
/// Each stream has one sender loop that owns its watchers and does every
/// write, so responses never interleave. The loop wakes on a request (create,
/// cancel, progress) or on new revisions, and serves each watcher from the
/// store's event feed starting at the watcher's next revision, a bounded
/// batch at a time. A slow client only slows its own loop (gRPC flow
/// control): memory stays bounded whatever it lags by.
struct WatchService: Etcdserverpb_Watch.SimpleServiceProtocol {
    let node: Node

    static let watchersPerStreamMax = 10_000
    static let eventsPerResponseMax = 1_000

    enum Signal: Sendable {
        case request(Etcdserverpb_WatchRequest)
        case revisions
        case end
    }

    struct Watcher {
        var id: Int64
        var range: RangeRequest
        var next: Int64
        var prevKV: Bool
        var noPut: Bool
        var noDelete: Bool
        var progressNotify: Bool
        var lastSent: Date
    }

    func watch(request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>,
               response: RPCWriter<Etcdserverpb_WatchResponse>, context: ServerContext) async throws {
        let (signals, continuation) = AsyncStream<Signal>.makeStream()
        // Coalesce store wake-ups: at most one pending at a time.
        let pending = WakeFlag()
        let token = node.watchHub.subscribe {
            if pending.raise() { continuation.yield(.revisions) }
        }
        defer { node.watchHub.unsubscribe(token) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.yield(.end) }
                for try await message in request { continuation.yield(.request(message)) }
            }
            group.addTask {
                // Progress notifications for watchers that asked for them.
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(Self.progressIntervalSeconds))
                    continuation.yield(.revisions)
                }
            }
            var watchers: [Int64: Watcher] = [:]
            var nextID: Int64 = 0
            for await signal in signals {
                switch signal {
                case .end:
                    group.cancelAll()
                    continuation.finish()
                case .revisions:
                    pending.lower()
                case .request(let message):
                    switch message.requestUnion {
                    case .createRequest(let create):
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
                        if watchers[id] != nil || watchers.count >= Self.watchersPerStreamMax {
                            // etcd answers a duplicate id with created and canceled at once.
                            reply.created = true
                            reply.canceled = true
                            reply.cancelReason = watchers[id] != nil ? "etcdserver: duplicate watch ID" : "ballot: too many watchers on one stream"
                            try await response.write(reply)
                            continue
                        }
                        var range = RangeRequest(key: [UInt8](create.key), rangeEnd: [UInt8](create.rangeEnd))
                        range.revision = nil
                        watchers[id] = Watcher(
                            id: id, range: range, next: create.startRevision > 0 ? create.startRevision : current + 1,
                            prevKV: create.prevKv, noPut: create.filters.contains(.noput), noDelete: create.filters.contains(.nodelete),
                            progressNotify: create.progressNotify, lastSent: Date())
                        reply.created = true
                        try await response.write(reply)
                    case .cancelRequest(let cancel):
                        guard watchers.removeValue(forKey: cancel.watchID) != nil else { continue }
                        var reply = Etcdserverpb_WatchResponse()
                        reply.header = node.header(revision: try node.read { $0.currentRevision })
                        reply.watchID = cancel.watchID
                        reply.canceled = true
                        try await response.write(reply)
                    case .progressRequest:
                        // etcd 3.4: one header-only response, watch id -1, for the whole stream.
                        var reply = Etcdserverpb_WatchResponse()
                        reply.header = node.header(revision: try node.read { $0.currentRevision })
                        reply.watchID = -1
                        try await response.write(reply)
                    case nil:
                        break
                    }
                }
                for id in watchers.keys.sorted() {
                    guard var watcher = watchers[id] else { continue }
                    let keep = try await serve(&watcher, response)
                    watchers[id] = keep ? watcher : nil
                }
            }
            group.cancelAll()
        }
    }

    static let progressIntervalSeconds = 10.0 * 60

    /// Send `watcher` everything from its next revision on; false when the
    /// watch ended (its history was compacted away).
    private func serve(_ watcher: inout Watcher, _ response: RPCWriter<Etcdserverpb_WatchResponse>) async throws -> Bool {
        while true {
            let (events, current, compacted) = try node.read { store -> ([Mvccpb_Event], Int64, Int64?) in
                let current = store.currentRevision
                guard watcher.next <= current else { return ([], current, nil) }
                var found: [WatchEvent]
                do {
                    found = try store.events(from: watcher.next, range: watcher.range, limit: Self.eventsPerResponseMax)
                } catch StorageError.compacted {
                    return ([], current, store.compactedRevision)
                }
                var upTo = current
                if found.count == Self.eventsPerResponseMax, let last = found.last?.kv.modRevision {
                    // Never split a revision across responses: stop before the last
                    // one unless it is all there is, then take it whole.
                    let before = found.filter { $0.kv.modRevision < last }
                    if before.isEmpty {
                        found = try store.events(from: last, range: watcher.range, limit: Int.max).filter { $0.kv.modRevision == last }
                        upTo = last
                    } else {
                        found = before
                        upTo = last - 1
                    }
                }
                watcher.next = upTo + 1
                let events = found.compactMap { event -> Mvccpb_Event? in
                    if event.kind == .put && watcher.noPut || event.kind == .delete && watcher.noDelete { return nil }
                    var out = Mvccpb_Event()
                    out.type = event.kind == .put ? .put : .delete
                    out.kv = Conversions.keyValue(event.kv)
                    if event.kind == .delete {
                        out.kv = Mvccpb_KeyValue()
                        out.kv.key = Data(event.kv.key)
                        out.kv.modRevision = event.kv.modRevision
                    }
                    if watcher.prevKV, event.kv.modRevision > 1 {
                        let previous = RangeRequest(key: event.kv.key, revision: event.kv.modRevision - 1)
                        if let kv = try? store.range(previous).kvs.first { out.prevKv = Conversions.keyValue(kv) }
                    }
                    return out
                }
                return (events, current, nil)
            }
            if let compacted {
                var reply = Etcdserverpb_WatchResponse()
                reply.header = node.header(revision: current)
                reply.watchID = watcher.id
                reply.canceled = true
                reply.compactRevision = compacted
                reply.cancelReason = "etcdserver: mvcc: required revision has been compacted"
                try await response.write(reply)
                return false
            }
            if !events.isEmpty {
                var reply = Etcdserverpb_WatchResponse()
                reply.header = node.header(revision: current)
                reply.watchID = watcher.id
                reply.events = events
                try await response.write(reply)
                watcher.lastSent = Date()
            } else if watcher.progressNotify && Date().timeIntervalSince(watcher.lastSent) >= Self.progressIntervalSeconds {
                var reply = Etcdserverpb_WatchResponse()
                reply.header = node.header(revision: current)
                reply.watchID = watcher.id
                try await response.write(reply)
                watcher.lastSent = Date()
            }
            if watcher.next > current { return true }
        }
    }
}
