import Consensus
import EtcdAPI
import Foundation
import Logging
import Storage
import SwiftProtobuf

/// Applies committed log entries to the MVCC store, deterministically: every
/// member turns the same entry into the same revision and the same result.
/// The entry's index is written in the same LMDB transaction as its effect.
struct Applier {
    let store: MVCCStore
    let lessor: Lessor
    let members: MemberDirectory
    let transport: PeerTransport
    let mvccMetrics: MVCCMetrics
    let logger: Logger

    /// What applying one command produced, for the caller awaiting it.
    struct Outcome {
        var id: UInt64
        var origin: UInt64
        var result: Ballotpb_CommandResult
    }

    /// Apply `entry`; an outcome for commands, nil for no-ops and
    /// configuration changes (the core tracks membership itself).
    /// Storage I/O failures are fatal to the member: it must not go on with
    /// a state machine whose writes it cannot trust.
    func apply(_ entry: Entry) -> Outcome? {
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
        do throws(StorageError) {
            switch command.request {
            case .put(let p):
                let (_, outcomes) = try store.apply(
                    [.put(key: [UInt8](p.key), value: [UInt8](p.value), lease: p.lease, options: Conversions.putOptions(p))],
                    index: entry.index)
                var response = Etcdserverpb_PutResponse()
                mvccMetrics.count(puts: 1)
                if case .put(let previous) = outcomes.first, previous == nil { mvccMetrics.moveKeys(by: 1) }
                if p.prevKv, case .put(let previous?) = outcomes.first { response.prevKv = Conversions.keyValue(previous) }
                response.header.revision = store.currentRevision
                result.put = response
            case .deleteRange(let d):
                let (_, outcomes) = try store.apply([.deleteRange(key: [UInt8](d.key), rangeEnd: [UInt8](d.rangeEnd))], index: entry.index)
                var response = Etcdserverpb_DeleteRangeResponse()
                mvccMetrics.count(deletes: 1)
                if case .deleted(let kvs) = outcomes.first {
                    mvccMetrics.moveKeys(by: -kvs.count)
                    response.deleted = Int64(kvs.count)
                    if d.prevKv { response.prevKvs = kvs.map { Conversions.keyValue($0) } }
                }
                response.header.revision = store.currentRevision
                result.deleteRange = response
            case .txn(let t):
                let request = Conversions.txnRequest(t)
                let outcome = try store.txn(request, index: entry.index)
                mvccMetrics.count(request, outcome)
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
                lessor.granted(g.id, ttl: g.ttl)
                var response = Etcdserverpb_LeaseGrantResponse()
                response.id = g.id
                response.ttl = g.ttl
                response.header.revision = store.currentRevision
                result.leaseGrant = response
            case .leaseRevoke(let r):
                let removed = try store.revokeLease(r.id, index: entry.index)
                // etcd's lessor deletes each attached key with a delete range of its own.
                mvccMetrics.count(deletes: removed.count)
                mvccMetrics.moveKeys(by: -removed.count)
                lessor.revoked(r.id)
                var response = Etcdserverpb_LeaseRevokeResponse()
                response.header.revision = store.currentRevision
                result.leaseRevoke = response
            case .memberAttributes(let member):
                try store.setMember(member.id, attributes: (try? member.serializedBytes()) ?? [], index: entry.index)
                learn(member)
            case .memberRemoved(let id):
                try store.setMember(id, attributes: nil, index: entry.index)
                members.remove(NodeID(id))
                transport.removePeer(NodeID(id))
            case .alarm(let a) where a.alarm == .nospace && (a.action == .activate || a.action == .deactivate):
                try store.setNoSpaceAlarm(a.action == .activate, index: entry.index)
                var response = Etcdserverpb_AlarmResponse()
                response.header.revision = store.currentRevision
                result.alarm = response
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

    /// Record a member's name and URLs and dial its peer URL (a member the
    /// log added or updated, or one a snapshot brought).
    func learn(_ member: Etcdserverpb_Member) {
        members.set(member)
        guard let url = member.peerUrls.first else { return }
        do {
            transport.addPeer(NodeID(member.id), address: try HostPort(url: url))
        } catch {
            logger.error("cannot dial a member: its peer URL does not parse", metadata: ["member": "\(member.id)", "url": "\(url)", "error": "\(error)"])
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
