import EtcdAPI
import Foundation
import GRPCCore

extension BallotClient {
    /// Every member of the cluster, as a member reports them.
    public func memberList() async throws -> Etcdserverpb_MemberListResponse {
        try await call(.read) { connection, options in
            try await Etcdserverpb_Cluster.Client(wrapping: connection).memberList(Etcdserverpb_MemberListRequest(), options: options)
        }
    }

    /// The status of the member at `endpoint` (an index into the
    /// configuration's endpoints), asked of it alone, with no retry.
    public func status(at endpoint: Int) async throws -> Etcdserverpb_StatusResponse {
        try await callOnce(at: endpoint) { connection, options in
            try await Etcdserverpb_Maintenance.Client(wrapping: connection).status(Etcdserverpb_StatusRequest(), options: options)
        }
    }

    /// etcdctl's health check of one member: a linearizable get of the key
    /// `health` answers (a permission refusal counts as healthy: the member
    /// answered through consensus). Nil when healthy, else why not.
    public func unhealthy(at endpoint: Int) async -> String? {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data("health".utf8)
        do {
            _ = try await callOnce(at: endpoint) { connection, options in
                try await Etcdserverpb_KV.Client(wrapping: connection).range(request, options: options)
            }
            return nil
        } catch let error as RPCError where error.code == .permissionDenied {
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Stream a backup of one member's store (Maintenance.Snapshot) into
    /// `file`, telling `progress` the bytes written and the bytes the
    /// member says remain. Written to a temporary file, synced, then
    /// renamed, so a file at `path` is always whole. Its size.
    @discardableResult
    public func saveSnapshot(to path: String, progress: @escaping @Sendable (_ written: UInt64, _ remaining: UInt64) -> Void) async throws -> UInt64 {
        let temporary = path + ".part"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        let written = Locked<UInt64>(0)
        do {
            try await withEndpoint { _, connection in
                try await Etcdserverpb_Maintenance.Client(wrapping: connection).snapshot(Etcdserverpb_SnapshotRequest(), options: streamOptions) { response in
                    for try await chunk in response.messages {
                        try handle.write(contentsOf: chunk.blob)
                        let total = written.withLock { total in
                            total += UInt64(chunk.blob.count)
                            return total
                        }
                        progress(total, chunk.remainingBytes)
                    }
                }
            }
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return written.withLock { $0 }
    }

    /// One attempt at one endpoint, counted by the balancer like any call.
    func callOnce<Response: EtcdResponse>(at endpoint: Int, _ body: (Connection, CallOptions) async throws -> Response) async throws -> Response {
        precondition(connections.indices.contains(endpoint), "no endpoint \(endpoint)")
        var options = CallOptions.defaults
        options.timeout = configuration.requestTimeout
        options.waitForReady = false
        return try await body(connections[endpoint], options)
    }
}
