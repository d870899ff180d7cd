import Consensus
import EtcdAPI
import Foundation
import Logging
import Storage
import SwiftProtobuf

/// Applies committed log entries to the MVCC store, deterministically: every
/// member turns the same entry into the same revision and the same result.
/// The entry's index is written in the same LMDB transaction as its effect.
///
/// The server's apply thread and the simulator's members run this same
/// type over a real `MVCCStore`, so the simulator checks the state machine
/// the server serves. What applying means beyond the store (lease timers,
/// the member directory, peer connections) goes to `effects`.
public struct Applier {
    public let store: MVCCStore
    /// etcd's users, roles and permissions, changed by applying auth
    /// commands and consulted by every write (`AuthStore`).
    public let auth: AuthStore
    let effects: any ApplyEffects
    let metrics: any ApplyMetrics
    let logger: Logger
    /// Test-only: a state machine bug the simulator must catch.
    @_spi(BugInjection) public var injectedBug: StateMachineBug?

    public init(store: MVCCStore, effects: any ApplyEffects, metrics: any ApplyMetrics, logger: Logger, auth: AuthStore = AuthStore()) {
        self.store = store
        self.auth = auth
        self.effects = effects
        self.metrics = metrics
        self.logger = logger
    }

    /// What applying one command produced, for the caller awaiting it.
    public struct Outcome {
        /// The proposer's request ID and member ID (`Ballotpb_Command.id`, `.origin`).
        public var id: UInt64
        public var origin: UInt64
        public var result: Ballotpb_CommandResult
    }

    /// Apply `entries` (committed, in order), then record `state` as what
    /// a snapshot taken after them holds; each command's outcome is
    /// appended to `outcomes`. Call it inside `MVCCStore.batch` to make a
    /// run of these one LMDB commit, as the server's apply thread does.
    public func apply(_ entries: [Entry], through state: SnapshotMetadata, into outcomes: inout [Outcome]) throws(StorageError) {
        for entry in entries {
            if let outcome = apply(entry) { outcomes.append(outcome) }
        }
        try store.recordApplied(state)
    }

    /// Apply `entry`; an outcome for commands, nil for no-ops and
    /// configuration changes (the core tracks membership itself).
    /// Storage I/O failures are fatal to the member: it must not go on with
    /// a state machine whose writes it cannot trust.
    public func apply(_ entry: Entry) -> Outcome? {
        guard case .command(let bytes) = entry.payload else { return nil }
        guard entry.index > store.appliedIndex else { return nil }
        let command: Ballotpb_Command
        do {
            command = try Ballotpb_Command(serializedBytes: bytes)
        } catch {
            // Every member decodes the same bytes the same way: record the
            // index and answer with an error rather than diverge.
            record(entry.index)
            return Outcome(id: 0, origin: 0, result: failure(.internal("undecodable command at index \(entry.index)")))
        }
        var result = Ballotpb_CommandResult()
        if let refusal = permissionRefusal(command) {
            // etcd checks each request against the auth store as it applies
            // it, with the user and auth revision the proposer found.
            record(entry.index)
            return Outcome(id: command.id, origin: command.origin, result: failure(.auth(refusal)))
        }
        do throws(StorageError) {
            switch command.request {
            case .put(let p):
                let (_, outcomes) = try store.apply(
                    [.put(key: [UInt8](p.key), value: [UInt8](p.value), lease: p.lease, options: Conversions.putOptions(p))],
                    index: entry.index)
                var response = Etcdserverpb_PutResponse()
                metrics.count(ranges: 0, puts: 1, deletes: 0)
                if case .put(let previous) = outcomes.first, previous == nil { metrics.moveKeys(by: 1) }
                if p.prevKv, case .put(let previous?) = outcomes.first { response.prevKv = Conversions.keyValue(previous) }
                response.header.revision = store.currentRevision
                result.put = response
            case .deleteRange(let d):
                let (_, outcomes) = try store.apply([.deleteRange(key: [UInt8](d.key), rangeEnd: [UInt8](d.rangeEnd))], index: entry.index)
                var response = Etcdserverpb_DeleteRangeResponse()
                metrics.count(ranges: 0, puts: 0, deletes: 1)
                if case .deleted(let kvs) = outcomes.first {
                    metrics.moveKeys(by: -kvs.count)
                    response.deleted = Int64(kvs.count)
                    if d.prevKv { response.prevKvs = kvs.map { Conversions.keyValue($0) } }
                }
                response.header.revision = store.currentRevision
                result.deleteRange = response
            case .txn(let t):
                var request = Conversions.txnRequest(t)
                if injectedBug == .txnIgnoresCompares { request.compare = [] }
                let outcome = try store.txn(request, index: entry.index)
                metrics.count(request, outcome)
                var response = Conversions.txnResponse(outcome, request: t)
                response.header.revision = store.currentRevision
                result.txn = response
            case .compaction(let c):
                try store.compact(to: c.revision)
                record(entry.index)
                var response = Etcdserverpb_CompactionResponse()
                response.header.revision = store.currentRevision
                result.compaction = response
            case .leaseGrant(let g):
                try store.grantLease(LeaseRecord(id: g.id, ttl: g.ttl), index: entry.index)
                effects.leaseGranted(g.id, ttl: g.ttl)
                var response = Etcdserverpb_LeaseGrantResponse()
                response.id = g.id
                response.ttl = g.ttl
                response.header.revision = store.currentRevision
                result.leaseGrant = response
            case .leaseRevoke(let r):
                let removed = try store.revokeLease(r.id, index: entry.index)
                // etcd's lessor deletes each attached key with a delete range of its own.
                metrics.count(ranges: 0, puts: 0, deletes: removed.count)
                metrics.moveKeys(by: -removed.count)
                effects.leaseRevoked(r.id)
                var response = Etcdserverpb_LeaseRevokeResponse()
                response.header.revision = store.currentRevision
                result.leaseRevoke = response
            case .memberAttributes(let member):
                try store.setMember(member.id, attributes: (try? member.serializedBytes()) ?? [], index: entry.index)
                effects.memberLearned(member)
            case .memberRemoved(let id):
                try store.setMember(id, attributes: nil, index: entry.index)
                effects.memberRemoved(NodeID(id))
            case .alarm(let a) where a.alarm == .nospace && (a.action == .activate || a.action == .deactivate):
                try store.setNoSpaceAlarm(a.action == .activate, index: entry.index)
                var response = Etcdserverpb_AlarmResponse()
                response.header.revision = store.currentRevision
                result.alarm = response
            case .auth(let request):
                let effects = self.effects
                switch try auth.apply(request, caller: caller(command), index: entry.index, store: store, publish: { effects.authTokens($0) }) {
                case .success(let bytes):
                    result.auth = Data(bytes)
                case .failure(let refusal):
                    result = failure(.auth(refusal))
                }
            case .alarm, nil:
                record(entry.index)
                result = failure(.unimplemented("this request"))
            }
        } catch {
            switch error {
            case .lmdb, .io, .corrupt, .wrongDataDirectory:
                IOFailure.stop(logger, "applying index \(entry.index)", error)
            default:
                // A request the store refuses (compacted revision, quota…):
                // the same refusal on every member; the index is still applied.
                record(entry.index)
                result = failure(EtcdError(error))
            }
        }
        return Outcome(id: command.id, origin: command.origin, result: result)
    }

    private func caller(_ command: Ballotpb_Command) -> AuthStore.Caller {
        command.hasAuthHeader ? AuthStore.Caller(username: command.authHeader.username, revision: command.authHeader.authRevision) : .nobody
    }

    /// Why the auth store refuses `command` to its caller, if it does
    /// (etcd's apply_auth.go; nested transactions checked too, as etcd does
    /// since 3.4.42). Auth commands check themselves as they apply.
    private func permissionRefusal(_ command: Ballotpb_Command) -> AuthFailure? {
        guard auth.enabled, !command.authHeader.memberInternal else { return nil }
        let caller = caller(command)
        func check(_ key: Data, _ rangeEnd: Data, writing: Bool) -> AuthFailure? {
            auth.check(caller, key: [UInt8](key), rangeEnd: [UInt8](rangeEnd), writing: writing)
        }
        func attachedKeys(_ lease: Int64) -> AuthFailure? {
            guard lease != 0, (try? store.lease(lease)) != nil else { return nil }
            for key in (try? store.keys(attachedTo: lease)) ?? [] {
                if let refusal = auth.check(caller, key: key, rangeEnd: [], writing: true) { return refusal }
            }
            return nil
        }
        func txn(_ t: Etcdserverpb_TxnRequest) -> AuthFailure? {
            for compare in t.compare {
                if let refusal = check(compare.key, compare.rangeEnd, writing: false) { return refusal }
            }
            for op in t.success + t.failure {
                let refusal: AuthFailure?
                switch op.request {
                case .requestRange(let r): refusal = check(r.key, r.rangeEnd, writing: false)
                case .requestPut(let p):
                    refusal = check(p.key, Data(), writing: true) ?? (p.prevKv ? check(p.key, Data(), writing: false) : nil)
                        ?? attachedKeys(p.lease)
                case .requestDeleteRange(let d):
                    refusal = (d.prevKv ? check(d.key, d.rangeEnd, writing: false) : nil) ?? check(d.key, d.rangeEnd, writing: true)
                case .requestTxn(let nested): refusal = txn(nested)
                case nil: refusal = nil
                }
                if let refusal { return refusal }
            }
            return nil
        }
        switch command.request {
        case .put(let p):
            return check(p.key, Data(), writing: true) ?? attachedKeys(p.lease) ?? (p.prevKv ? check(p.key, Data(), writing: false) : nil)
        case .deleteRange(let d):
            return check(d.key, d.rangeEnd, writing: true) ?? (d.prevKv ? check(d.key, d.rangeEnd, writing: false) : nil)
        case .txn(let t):
            return txn(t)
        case .leaseRevoke(let r):
            for key in (try? store.keys(attachedTo: r.id)) ?? [] {
                if let refusal = auth.check(caller, key: key, rangeEnd: [], writing: true) { return refusal }
            }
            return nil
        default:
            return nil
        }
    }

    /// Mark `index` applied without changing any key.
    private func record(_ index: LogIndex) {
        guard index > store.appliedIndex else { return }
        do {
            try store.apply([], index: index)
        } catch {
            IOFailure.stop(logger, "recording applied index \(index)", error)
        }
    }

    private func failure(_ error: EtcdError) -> Ballotpb_CommandResult {
        var result = Ballotpb_CommandResult()
        result.errorCode = UInt32(error.code.rawValue)
        result.errorMessage = error.description
        return result
    }
}

/// What applying an entry does outside the store: the server's lease
/// timers, member directory and peer connections; nothing in the simulator.
/// Called on the applying thread, in log order.
public protocol ApplyEffects {
    func leaseGranted(_ id: Int64, ttl: Int64)
    func leaseRevoked(_ id: Int64)
    /// A member the log added or updated (its name and URLs).
    func memberLearned(_ member: Etcdserverpb_Member)
    func memberRemoved(_ id: NodeID)
    /// Simple tokens the auth store assigned or invalidated.
    func authTokens(_ effects: [AuthStore.TokenEffect])
}

extension ApplyEffects {
    public func authTokens(_ effects: [AuthStore.TokenEffect]) {}
}

/// etcd's MVCC counters as the applier moves them (the server's
/// `MVCCMetrics`).
public protocol ApplyMetrics {
    func count(ranges: Int, puts: Int, deletes: Int)
    func count(_ request: TxnRequest, _ response: TxnResponse)
    /// The number of live keys changed by `change`.
    func moveKeys(by change: Int)
}
