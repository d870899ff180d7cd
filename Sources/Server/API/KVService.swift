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

    /// A range at the consistency the calling task asked for
    /// (`ReadConsistency.Requested.current`), etcd's flag by default.
    func range(_ request: Etcdserverpb_RangeRequest) async throws -> Etcdserverpb_RangeResponse {
        try await rpc {
            try RequestChecks.range(request)
            let consistency = try consistency(of: request, .current)
            let caller = try await node.caller()
            switch consistency {
            case .linearizable: try await node.linearizableBarrier()
            case .lease: try await node.linearizableBarrier(lease: true)
            case .serializable: break
            case .boundedStaleness(let bound): try await node.boundedBarrier(bound)
            }
            return try readRange(request, caller)
        }
    }

    /// The level `request` runs at, given what its call asked for.
    func consistency(of request: Etcdserverpb_RangeRequest, _ requested: ReadConsistency.Requested) throws(ReadConsistencyError) -> ReadConsistency {
        try ReadConsistency.choose(requested, serializable: request.serializable, electionMilliseconds: node.electionMilliseconds)
    }

    /// A range answered at once from this member's store, when its level
    /// waits for nothing (serializable, or bounded staleness that this
    /// member's freshness already meets); nil otherwise.
    func rangeNow(_ request: Etcdserverpb_RangeRequest, _ consistency: ReadConsistency, caller: AuthStore.Caller? = nil) throws -> Etcdserverpb_RangeResponse? {
        try rpcNow { try RequestChecks.range(request) }
        switch consistency {
        case .serializable: return try readRange(request, caller)
        case .boundedStaleness(let bound) where node.isFreshEnough(bound): return try readRange(request, caller)
        case .linearizable, .lease, .boundedStaleness: return nil
        }
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

    func rangeHere(
        _ request: Etcdserverpb_RangeRequest, _ consistency: ReadConsistency, caller: AuthStore.Caller? = nil,
        then done: @escaping HereDone<Etcdserverpb_RangeResponse>
    ) throws -> Bool {
        try rpcNow { try RequestChecks.range(request) }
        let read: @Sendable (Result<Void, any Error>) -> Void = { result in done(result.map { { try readRange(request, caller) } }) }
        switch consistency {
        case .linearizable: return node.linearizableBarrierHere(then: read)
        case .lease: return node.linearizableBarrierHere(lease: true, then: read)
        case .boundedStaleness(let bound):
            node.boundedBarrier(bound, then: read)
            return true
        case .serializable: return false
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
