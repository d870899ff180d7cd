import Consensus
import Crypto
import EtcdAPI
import Foundation
import GRPCCore
import StateMachine
import Storage

/// etcd's Maintenance service: status, hashes, defragmentation, alarms and
/// leadership moves. Snapshot streaming comes with snapshot support.
struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    let node: Node
    let dataDirectory: String

    /// The etcd release whose behaviour Ballot matches (Debian's
    /// etcd-server 3.4.23), reported where etcd reports its own version:
    /// Status, /version, the etcd_server_version metric. Clients gate
    /// features on it.
    static let serverVersion = "3.4.23"
    /// The cluster version etcd's /version reports beside the server's.
    static let clusterVersion = "3.4.0"
    /// The cluster version as etcd's metric labels it (major.minor).
    static let clusterMinorVersion = "3.4"

    func status(request: Etcdserverpb_StatusRequest, context: ServerContext) async throws -> Etcdserverpb_StatusResponse {
        try await rpc {
            let status = node.status
            let (used, revision, alarm) = try node.read { store in
                (try store.inUseBytes(), store.currentRevision, store.noSpaceAlarm)
            }
            var response = Etcdserverpb_StatusResponse()
            response.header = node.header(revision: revision)
            response.version = Self.serverVersion
            response.dbSize = Int64(Self.fileBytes(dataDirectory + "/db/data.mdb") ?? used)
            response.dbSizeInUse = Int64(used)
            response.leader = status.leader?.rawValue ?? 0
            response.raftIndex = status.commitIndex.rawValue
            response.raftTerm = status.term.rawValue
            response.raftAppliedIndex = status.appliedIndex.rawValue
            response.isLearner = status.learners.contains(node.id)
            if alarm { response.errors = ["memberID:\(node.id.rawValue) alarm:NOSPACE "] }
            return response
        }
    }

    /// etcd's admin check for Hash, HashKV, Defragment and Snapshot, whose
    /// refusals it returns unconverted: gRPC's Unknown with the auth
    /// store's own text ("auth: permission denied").
    private func checkAdmin() async throws {
        try await withRawAuthRefusals { try node.checkAdmin(try await node.caller()) }
    }

    /// `body`, an auth refusal from it returned as etcd returns the calls
    /// that skip its error conversion: gRPC's Unknown with the auth store's
    /// own text.
    private func withRawAuthRefusals(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch EtcdError.auth(let refusal) {
            throw RPCError(code: .unknown, message: refusal.internalText)
        }
    }

    func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws -> Etcdserverpb_HashKVResponse {
        try await checkAdmin()
        return try await rpc {
            let (hash, compacted, revision) = try node.read { store in
                let (hash, compacted) = try store.hashKV(at: request.revision > 0 ? request.revision : nil)
                return (hash, compacted, store.currentRevision)
            }
            var response = Etcdserverpb_HashKVResponse()
            response.header = node.header(revision: revision)
            response.hash = hash
            response.compactRevision = compacted
            return response
        }
    }

    func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws -> Etcdserverpb_HashResponse {
        // etcd hashes its whole backend file; Ballot's LMDB pages differ
        // between members even with equal contents, so this hashes every
        // stored version (HashKV at the current revision) instead.
        try await checkAdmin()
        return try await rpc {
            let (hash, revision) = try node.read { store in (try store.hashKV(at: nil).hash, store.currentRevision) }
            var response = Etcdserverpb_HashResponse()
            response.header = node.header(revision: revision)
            response.hash = hash
            return response
        }
    }

    func defragment(request: Etcdserverpb_DefragmentRequest, context: ServerContext) async throws -> Etcdserverpb_DefragmentResponse {
        try await checkAdmin()
        return try await rpc {
            try node.withStoreExclusive { store in try store.defragment() }
            // etcd answers a defragmentation with no header at all.
            return Etcdserverpb_DefragmentResponse()
        }
    }

    /// Alarms are replicated: deactivating one is a write every member
    /// applies; listing reads this member's copy. etcd's answers carry no
    /// header (they come straight from its applier).
    func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws -> Etcdserverpb_AlarmResponse {
        // etcd proposes every Alarm call, so a token given is judged (no
        // permission is), and a refusal returned unconverted.
        if node.needsCredentials(token: RequestCredentials.token) {
            try await withRawAuthRefusals { _ = try await node.caller() }
        }
        return try await rpc {
            if request.action == .activate || request.action == .deactivate {
                guard request.alarm == .nospace else { throw EtcdError.invalid("etcdserver: only the NOSPACE alarm is supported") }
                // etcd answers with the alarm it changed: a deactivation of
                // an alarm that was raised names it (etcdctl prints it).
                try await node.linearizableBarrier()
                let wasRaised = try node.read { $0.noSpaceAlarm }
                var command = Ballotpb_Command()
                command.alarm = request
                _ = try await node.propose(command)
                var response = Etcdserverpb_AlarmResponse()
                if request.action == .activate || wasRaised {
                    var member = Etcdserverpb_AlarmMember()
                    member.memberID = request.memberID
                    member.alarm = request.alarm
                    response.alarms = [member]
                }
                return response
            }
            var response = Etcdserverpb_AlarmResponse()
            let alarm = try node.read { $0.noSpaceAlarm }
            if alarm && (request.alarm == .none || request.alarm == .nospace) {
                var member = Etcdserverpb_AlarmMember()
                member.memberID = node.id.rawValue
                member.alarm = .nospace
                response.alarms = [member]
            }
            return response
        }
    }

    /// A consistent copy of the store in etcd's own format (a bbolt file,
    /// `EtcdBackendSnapshot`), streamed in chunks and ended, as etcd's is,
    /// by a message holding the SHA-256 of everything before it, so that
    /// `etcdctl snapshot save`, `status` and `restore` take it.
    func snapshot(request: Etcdserverpb_SnapshotRequest, response: RPCWriter<Etcdserverpb_SnapshotResponse>, context: ServerContext) async throws {
        try await checkAdmin()
        let scratch = dataDirectory + "/snap/client-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dataPath = scratch + "/db"
        let size = try await rpc {
            try await Node.onThread("ballot-snapshot") { try node.writeEtcdSnapshot(to: dataPath) }
        }
        guard let file = FileHandle(forReadingAtPath: dataPath) else {
            throw EtcdError.internal("cannot read \(dataPath)").rpcError
        }
        defer { try? file.close() }
        var hash = SHA256()
        var sent = 0
        var tenths = ProgressTenths(total: size)
        node.logger.info("sending a snapshot to a client", metadata: ["bytes": "\(size)"])
        while sent < size {
            let chunk = file.readData(ofLength: Self.snapshotChunkBytes)
            if chunk.isEmpty { throw EtcdError.internal("\(dataPath) ended early").rpcError }
            hash.update(data: chunk)
            sent += chunk.count
            var message = Etcdserverpb_SnapshotResponse()
            message.header = node.header(revision: 0)
            message.remainingBytes = UInt64(size - sent)
            message.blob = chunk
            try await response.write(message)
            if tenths.advance(to: sent) != nil {
                node.logger.debug("snapshot progress", metadata: ["sent": "\(sent)", "total": "\(size)"])
            }
        }
        var last = Etcdserverpb_SnapshotResponse()
        last.header = node.header(revision: 0)
        last.blob = Data(hash.finalize())
        try await response.write(last)
        node.logger.info("sent a snapshot to a client", metadata: ["bytes": "\(sent)"])
    }

    /// etcd sends 32 KiB per message; a multiple of the page size.
    static let snapshotChunkBytes = 32 << 10

    func moveLeader(request: Etcdserverpb_MoveLeaderRequest, context: ServerContext) async throws -> Etcdserverpb_MoveLeaderResponse {
        try await rpc {
            let target = NodeID(request.targetID)
            guard node.status.role == .leader else { throw EtcdError.invalid("etcdserver: not leader") }
            guard node.status.voters.contains(target) else { throw EtcdError.badLeaderTransferee }
            guard try await node.moveLeadership(to: target) else {
                throw EtcdError.invalid("etcdserver: leadership transfer timed out")
            }
            var response = Etcdserverpb_MoveLeaderResponse()
            response.header = node.header(revision: try node.read { $0.currentRevision })
            return response
        }
    }

    static func fileBytes(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
    }
}
