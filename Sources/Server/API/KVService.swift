import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import StateMachine
import Storage

/// etcd's KV service. Writes go through consensus and are answered by the
/// member that applied them; reads are linearizable (ReadIndex) unless the
/// client asks for serializable, which this member answers from its store.
struct KVService: Etcdserverpb_KV.SimpleServiceProtocol {
    let node: Node

    func range(request: Etcdserverpb_RangeRequest, context: ServerContext) async throws -> Etcdserverpb_RangeResponse {
        try await range(request)
    }

    func range(_ request: Etcdserverpb_RangeRequest) async throws -> Etcdserverpb_RangeResponse {
        try await rpc {
            try RequestChecks.range(request)
            let caller = try await node.caller()
            if !request.serializable { try await node.linearizableBarrier() }
            return try readRange(request, caller)
        }
    }

    /// A serializable range, answered at once from this member's store:
    /// it waits for nothing but the store's reader lock.
    func serializableRange(_ request: Etcdserverpb_RangeRequest, caller: AuthStore.Caller? = nil) throws -> Etcdserverpb_RangeResponse {
        precondition(request.serializable, "only a serializable range is answered without a barrier")
        try rpcNow { try RequestChecks.range(request) }
        return try readRange(request, caller)
    }

    /// A checked range from this member's store as it is now, refused if
    /// the caller may not make it: judged under the same store lock as the
    /// read, so no permission taken back in between lets it through.
    private func readRange(_ request: Etcdserverpb_RangeRequest, _ caller: AuthStore.Caller?) throws -> Etcdserverpb_RangeResponse {
        try rpcNow {
            node.metrics.mvcc.count(ranges: 1)
            let (result, revision) = try node.read { store in
                if let refusal = node.auth.check(caller ?? .nobody, key: [UInt8](request.key), rangeEnd: [UInt8](request.rangeEnd), writing: false) {
                    throw EtcdError.auth(refusal)
                }
                return (try store.range(Conversions.rangeRequest(request)), store.currentRevision)
            }
            var response = Conversions.rangeResponse(result, keysOnly: request.keysOnly)
            response.header = node.header(revision: revision)
            return response
        }
    }

    func put(request: Etcdserverpb_PutRequest, context: ServerContext) async throws -> Etcdserverpb_PutResponse {
        try await put(request)
    }

    func put(_ request: Etcdserverpb_PutRequest) async throws -> Etcdserverpb_PutResponse {
        try await rpc {
            try RequestChecks.put(request)
            try await node.checkQuota()
            var command = try await authenticated()
            command.put = request
            return stamped(try await node.propose(command).put)
        }
    }

    func deleteRange(request: Etcdserverpb_DeleteRangeRequest, context: ServerContext) async throws -> Etcdserverpb_DeleteRangeResponse {
        try await deleteRange(request)
    }

    func deleteRange(_ request: Etcdserverpb_DeleteRangeRequest) async throws -> Etcdserverpb_DeleteRangeResponse {
        try await rpc {
            try RequestChecks.deleteRange(request)
            var command = try await authenticated()
            command.deleteRange = request
            return stamped(try await node.propose(command).deleteRange)
        }
    }

    func txn(request: Etcdserverpb_TxnRequest, context: ServerContext) async throws -> Etcdserverpb_TxnResponse {
        try await txn(request)
    }

    func txn(_ request: Etcdserverpb_TxnRequest) async throws -> Etcdserverpb_TxnResponse {
        try await rpc {
            try RequestChecks.txn(request, maxOperations: node.maxTxnOperations)
            if Self.writes(request) { try await node.checkQuota() }
            var command = try await authenticated()
            command.txn = request
            return stamped(try await node.propose(command).txn)
        }
    }

    func compact(request: Etcdserverpb_CompactionRequest, context: ServerContext) async throws -> Etcdserverpb_CompactionResponse {
        try await compact(request)
    }

    func compact(_ request: Etcdserverpb_CompactionRequest) async throws -> Etcdserverpb_CompactionResponse {
        try await rpc {
            var command = try await authenticated()
            command.compaction = request
            return stamped(try await node.propose(command).compaction)
        }
    }

    /// A command carrying its caller, for every member's permission check.
    private func authenticated() async throws -> Ballotpb_Command {
        node.command(by: try await node.caller())
    }

    // MARK: Answered by callback on the leader (`UnaryCalls`)
    //
    // Each checks the request (throwing etcd's error), then returns false,
    // having done nothing, unless this member leads and, for a write that
    // adds data, the quota leaves room (raising the NOSPACE alarm is the
    // async path's). Otherwise `done` gets the answer from the thread that
    // settled it, as a closure that makes the response where it is called
    // (the connection's event loop): a linearizable range reads the store
    // there, once its read index is applied.

    typealias HereDone<Response> = @Sendable (Result<@Sendable () throws -> Response, any Error>) -> Void

    func linearizableRangeHere(
        _ request: Etcdserverpb_RangeRequest, caller: AuthStore.Caller? = nil, then done: @escaping HereDone<Etcdserverpb_RangeResponse>
    ) throws -> Bool {
        try rpcNow { try RequestChecks.range(request) }
        return node.linearizableBarrierHere { result in
            done(result.map { { try readRange(request, caller) } })
        }
    }

    func putHere(_ request: Etcdserverpb_PutRequest, caller: AuthStore.Caller? = nil, then done: @escaping HereDone<Etcdserverpb_PutResponse>) throws -> Bool {
        try rpcNow { try RequestChecks.put(request) }
        guard quotaLeavesRoom else { return false }
        var command = node.command(by: caller)
        command.put = request
        return proposeHere(command, \.put, done)
    }

    func deleteRangeHere(
        _ request: Etcdserverpb_DeleteRangeRequest, caller: AuthStore.Caller? = nil, then done: @escaping HereDone<Etcdserverpb_DeleteRangeResponse>
    ) throws -> Bool {
        try rpcNow { try RequestChecks.deleteRange(request) }
        var command = node.command(by: caller)
        command.deleteRange = request
        return proposeHere(command, \.deleteRange, done)
    }

    func txnHere(_ request: Etcdserverpb_TxnRequest, caller: AuthStore.Caller? = nil, then done: @escaping HereDone<Etcdserverpb_TxnResponse>) throws -> Bool {
        try rpcNow { try RequestChecks.txn(request, maxOperations: node.maxTxnOperations) }
        guard !Self.writes(request) || quotaLeavesRoom else { return false }
        var command = node.command(by: caller)
        command.txn = request
        return proposeHere(command, \.txn, done)
    }

    /// Whether a put may go ahead without the async path's quota check
    /// (which raises the NOSPACE alarm when the quota is reached).
    private var quotaLeavesRoom: Bool {
        let usage = node.storeUsage
        return !usage.noSpaceAlarm && usage.usedBytes < node.quotaBytes
    }

    private func proposeHere<Response: ResponseWithHeader>(
        _ command: Ballotpb_Command, _ field: KeyPath<Ballotpb_CommandResult, Response> & Sendable, _ done: @escaping HereDone<Response>
    ) -> Bool {
        node.proposeHere(command) { result in
            done(result.map { result in { stamped(result[keyPath: field]) } })
        }
    }

    /// An applied write's response with etcd's header: this member, its
    /// term now, the revision the write produced.
    private func stamped<Response: ResponseWithHeader>(_ response: Response) -> Response {
        var response = response
        response.header = node.header(revision: response.header.revision)
        return response
    }

    /// Whether a transaction may put anything (deletes are always allowed).
    static func writes(_ txn: Etcdserverpb_TxnRequest) -> Bool {
        (txn.success + txn.failure).contains { op in
            switch op.request {
            case .requestPut: true
            case .requestTxn(let inner): writes(inner)
            default: false
            }
        }
    }
}

/// A KV response: each carries etcd's header.
protocol ResponseWithHeader: Sendable {
    var header: Etcdserverpb_ResponseHeader { get set }
}

extension Etcdserverpb_PutResponse: ResponseWithHeader {}
extension Etcdserverpb_DeleteRangeResponse: ResponseWithHeader {}
extension Etcdserverpb_TxnResponse: ResponseWithHeader {}
extension Etcdserverpb_CompactionResponse: ResponseWithHeader {}
