import EtcdAPI
import Foundation
import GRPCCore

/// One change a watch saw.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    public var keyValue: KeyValue
    /// The revision of the change (the key's mod revision).
    public var revision: Int64 { keyValue.modRevision }
}

extension BallotClient {
    /// Every change to `key` (or under it, with `prefix`) from
    /// `startRevision` on (nil: from now), in revision order, each once.
    /// When the stream breaks (its member died, lost its leader, or was
    /// cut off) the watch opens again on another member from the revision
    /// after the last one it delivered, so nothing is skipped or repeated.
    /// It ends with `ClientError.watchCompacted` if that revision was
    /// compacted meanwhile. Cancel the consuming task to stop it.
    public func watch(_ key: String, prefix: Bool = false, startRevision: Int64? = nil) -> AsyncThrowingStream<WatchEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, any Error>.makeStream()
        let task = background { [self] in
            do {
                try await resumingWatch(key, prefix: prefix, startRevision: startRevision) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func resumingWatch(_ key: String, prefix: Bool, startRevision: Int64?, deliver: @escaping @Sendable (WatchEvent) -> Void) async throws {
        let next = Locked<Int64?>(startRevision)
        var random = SystemRandomNumberGenerator()
        var failures = 0
        var last: Int?
        // etcdctl's watch asks for a leader: a member without one refuses at once.
        var metadata = Metadata()
        metadata.addString("true", forKey: "hasleader")
        while !Task.isCancelled {
            do {
                try await withEndpoint(avoiding: last.map { [$0] } ?? []) { index, connection in
                    last = index
                    try await Etcdserverpb_Watch.Client(wrapping: connection).watch(metadata: metadata, options: streamOptions, requestProducer: { writer in
                        var create = Etcdserverpb_WatchCreateRequest()
                        create.key = Data(key.utf8)
                        if prefix { create.rangeEnd = KeyPrefix.rangeEnd(Data(key.utf8)) }
                        if let revision = next.withLock({ $0 }) { create.startRevision = revision }
                        var request = Etcdserverpb_WatchRequest()
                        request.createRequest = create
                        try await writer.write(request)
                        // The stream stays open until the response side ends it.
                        try await Task.sleep(for: .seconds(365 * 24 * 3600))
                    }, onResponse: { response in
                        for try await message in response.messages {
                            if message.compactRevision > 0 { throw ClientError.watchCompacted(compactRevision: message.compactRevision) }
                            if message.canceled { throw RPCError(code: .unavailable, message: "watch canceled: \(message.cancelReason)") }
                            if message.created {
                                // From now: resume after the revision the watch began at.
                                next.withLock { $0 = $0 ?? message.header.revision + 1 }
                            }
                            for event in message.events {
                                let kind: WatchEvent.Kind = event.type == .delete ? .delete : .put
                                deliver(WatchEvent(kind: kind, keyValue: KeyValue(event.kv)))
                                next.withLock { $0 = event.kv.modRevision + 1 }
                            }
                        }
                    })
                }
                failures = 0
            } catch let error as ClientError {
                throw error
            } catch {
                if Task.isCancelled { return }
                failures += 1
                try await Task.sleep(for: configuration.retry.delay(beforeRetry: min(failures, 10), using: &random))
            }
        }
    }
}
