import EtcdAPI
import Foundation
import GRPCCore
import Storage

/// etcd's Watch service: one bidirectional stream carries many watches.
///
/// Each stream has one sender loop that owns its watchers (`WatchStream`)
/// and does every write, so responses never interleave. The loop wakes on a
/// request (create, cancel, progress), on new revisions or for progress
/// notifications, and serves the watchers from the store's event feed, a
/// bounded batch at a time. A slow client only slows its own loop (gRPC
/// flow control): memory stays bounded whatever it lags by.
struct WatchService: Etcdserverpb_Watch.SimpleServiceProtocol {
    let node: Node

    enum Signal: Sendable {
        case request(Etcdserverpb_WatchRequest)
        case revisions
        case progressDue
        case end
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
        var stream = WatchStream(node: node, current: try node.read { $0.currentRevision })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.yield(.end) }
                for try await message in request { continuation.yield(.request(message)) }
            }
            group.addTask {
                // Progress notifications for watchers that asked for them.
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(Self.progressCheckSeconds))
                    continuation.yield(.progressDue)
                }
            }
            for await signal in signals {
                var progress = false
                switch signal {
                case .end:
                    group.cancelAll()
                    continuation.finish()
                case .revisions:
                    pending.lower()
                case .progressDue:
                    progress = true
                case .request(let message):
                    switch message.requestUnion {
                    case .createRequest(let create):
                        try await stream.create(create, response)
                    case .cancelRequest(let cancel):
                        try await stream.cancel(cancel.watchID, response)
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
                try await stream.serve(progress: progress, response)
            }
            group.cancelAll()
        }
    }

    /// How often due progress notifications are looked for (each watcher
    /// gets one after `WatchStream.progressIntervalSeconds` without events).
    static let progressCheckSeconds = 10.0
}
