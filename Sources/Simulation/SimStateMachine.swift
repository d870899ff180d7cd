import Consensus
import EtcdAPI
import Foundation
import Logging
@_spi(BugInjection) import StateMachine
import Storage

/// A client command as it travels through the log: the etcd request the
/// operation is (a put, a transaction holding one range for a get, a
/// transaction comparing the value for a compare-and-swap) in the server's
/// own log format, `Ballotpb_Command`. Where the server puts the proposing
/// member and its request ID (`origin`, `id`), the simulator puts the
/// client and its sequence number: they name the client's session.
struct KVCommand: Sendable, Equatable {
    var client: Int
    var sequence: UInt64
    var operation: KVOperation

    init(client: Int, sequence: UInt64, operation: KVOperation) {
        self.client = client
        self.sequence = sequence
        self.operation = operation
    }

    var encoded: [UInt8] {
        var command = Ballotpb_Command()
        command.origin = UInt64(client)
        command.id = sequence
        switch operation {
        case .put(let key, let value):
            command.put = Self.put(key, value)
        case .get(let key):
            var range = Etcdserverpb_RequestOp()
            range.requestRange.key = Data(key.utf8)
            command.txn.success = [range]
        case .cas(let key, let expected, let new):
            var compare = Etcdserverpb_Compare()
            compare.key = Data(key.utf8)
            compare.result = .equal
            if let expected {
                compare.target = .value
                compare.value = Data(expected.utf8)
            } else {
                compare.target = .version
                compare.version = 0
            }
            var put = Etcdserverpb_RequestOp()
            put.requestPut = Self.put(key, new)
            command.txn.compare = [compare]
            command.txn.success = [put]
        }
        do {
            return try command.serializedBytes()
        } catch {
            preconditionFailure("a command that does not encode: \(error)")
        }
    }

    /// The command in `bytes`, as `encoded` wrote it.
    init(decoding bytes: [UInt8]) {
        guard let command = try? Ballotpb_Command(serializedBytes: bytes) else { preconditionFailure("undecodable command") }
        client = Int(command.origin)
        sequence = command.id
        func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
        switch command.request {
        case .put(let p):
            operation = .put(key: text(p.key), value: text(p.value))
        case .txn(let t) where t.compare.isEmpty:
            operation = .get(key: text(t.success[0].requestRange.key))
        case .txn(let t):
            let compare = t.compare[0]
            operation = .cas(key: text(compare.key), expected: compare.target == .value ? text(compare.value) : nil,
                             new: text(t.success[0].requestPut.value))
        default:
            preconditionFailure("a command the simulator never proposes: \(command)")
        }
    }

    private static func put(_ key: String, _ value: String) -> Etcdserverpb_PutRequest {
        var put = Etcdserverpb_PutRequest()
        put.key = Data(key.utf8)
        put.value = Data(value.utf8)
        return put
    }

    /// What the server's answer to this command means to the client.
    func result(_ answer: Ballotpb_CommandResult) -> KVResult {
        precondition(answer.errorCode == 0, "the store refused a simulated command \(operation): \(answer.errorMessage)")
        switch operation {
        case .put: return .ok
        case .get:
            let value = answer.txn.responses.first?.responseRange.kvs.first?.value
            return .value(value.map { String(decoding: $0, as: UTF8.self) })
        case .cas: return .swapped(answer.txn.succeeded)
        }
    }
}

/// A client's session: its last applied command and the answer, so a
/// retried command is answered, not applied twice.
struct ClientSession: Sendable, Equatable {
    var sequence: UInt64
    var result: KVResult
}

/// Everything a member's state machine holds at one log index, as a value:
/// the store's versions as `MVCCStore.export` reads them (what a backup
/// restores), the consensus state they stand for, and the client sessions.
/// It travels in snapshot messages and lies on the simulated disk.
struct MachineSnapshot: Sendable {
    var state: SnapshotMetadata
    var currentRevision: Int64
    var compactedRevision: Int64
    var versions: [ExportedVersion]
    var sessions: [Int: ClientSession]

    var index: LogIndex { state.index }
}

/// What members that applied the same prefix must agree on.
struct MachineFingerprint: Equatable {
    var index: LogIndex
    var revision: Int64
    var hash: UInt32
    var sessions: [Int: ClientSession]
}

/// The state machine a simulated member runs: the server's `Applier` on a
/// real `MVCCStore`, so the simulator checks the apply pipeline the server
/// serves, from its LMDB transactions to its etcd responses. In front of
/// it, the client sessions the simulator's retrying clients need (etcd has
/// none: its clients do not retry a write that may have applied).
///
/// The store lives in LMDB files of its own (`SimStoreFiles`) with
/// unsynced commits: a simulated crash drops the whole machine, and the
/// member restarts from what the simulated disk kept (a snapshot and the
/// log), as the server replays its log over its store.
struct SimStateMachine {
    private let files: SimStoreFiles
    private var applier: Applier
    private(set) var sessions: [Int: ClientSession] = [:]

    var appliedIndex: LogIndex { files.store.appliedIndex }

    init(restoring snapshot: MachineSnapshot?, bug: StateMachineBug? = nil) {
        files = SimStoreFiles()
        applier = Applier(store: files.store, effects: NoApplyEffects(), metrics: NoApplyMetrics(),
                          logger: Logger(label: "ballot.simulation", factory: { _ in SwiftLogNoOpLogHandler() }))
        applier.injectedBug = bug
        guard let snapshot else { return }
        do throws(StorageError) {
            try files.store.importVersions(snapshot.versions)
            try files.store.finishImport(currentRevision: snapshot.currentRevision, compactedRevision: snapshot.compactedRevision, state: snapshot.state)
            try files.store.logRecordedImport()
        } catch {
            preconditionFailure("restoring a snapshot into a simulated store: \(error)")
        }
        sessions = snapshot.sessions
    }

    /// Apply committed `entries` through the server's applier in one store
    /// batch, as the server's apply thread does; a command a session
    /// already applied is answered from the session, not applied again.
    /// Returns each entry with the command it carried and its answer (nil
    /// when it carried none, or a superseded retry).
    mutating func apply(_ entries: [Entry], through state: SnapshotMetadata) -> [(entry: Entry, outcome: (KVCommand, KVResult)?)] {
        var commands: [LogIndex: KVCommand] = [:]
        var fresh: [Entry] = []
        var retried: Set<LogIndex> = []
        var applying: [Int: UInt64] = [:]
        for entry in entries {
            guard case .command(let bytes) = entry.payload else {
                fresh.append(entry)
                continue
            }
            let command = KVCommand(decoding: bytes)
            commands[entry.index] = command
            let last = applying[command.client] ?? sessions[command.client]?.sequence ?? 0
            if command.sequence <= last {
                retried.insert(entry.index)
            } else {
                applying[command.client] = command.sequence
                fresh.append(entry)
            }
        }
        var outcomes: [Applier.Outcome] = []
        do throws(StorageError) {
            try files.store.batch { () throws(StorageError) in
                try applier.apply(fresh, through: state, into: &outcomes)
            }
        } catch {
            preconditionFailure("a simulated store failed: \(error)")
        }
        // The applier answers every command it applies, in log order.
        let applyingCommands = fresh.filter { commands[$0.index] != nil }
        precondition(outcomes.count == applyingCommands.count, "\(applyingCommands.count) commands applied, \(outcomes.count) answered")
        var answers: [LogIndex: KVResult] = [:]
        for (entry, outcome) in zip(applyingCommands, outcomes) {
            let command = commands[entry.index]!
            precondition(outcome.origin == UInt64(command.client) && outcome.id == command.sequence, "an outcome for another command")
            answers[entry.index] = command.result(outcome.result)
        }
        var applied: [(entry: Entry, outcome: (KVCommand, KVResult)?)] = []
        for entry in entries {
            guard let command = commands[entry.index] else {
                applied.append((entry, nil))
                continue
            }
            if retried.contains(entry.index) {
                let session = sessions[command.client]
                applied.append((entry, session?.sequence == command.sequence ? (command, session!.result) : nil))
            } else {
                let result = answers[entry.index]!
                sessions[command.client] = ClientSession(sequence: command.sequence, result: result)
                applied.append((entry, (command, result)))
            }
        }
        return applied
    }

    /// The value of `key` in the store now (a served read).
    func read(_ key: String) -> String? {
        do {
            return try files.store.range(RangeRequest(key: Array(key.utf8))).kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
        } catch {
            preconditionFailure("reading a simulated store: \(error)")
        }
    }

    /// The machine as a value, at `state` (its applied index).
    func snapshot(at state: SnapshotMetadata) -> MachineSnapshot {
        precondition(state.index == appliedIndex, "a snapshot at \(state.index) of a machine applied through \(appliedIndex)")
        var versions: [ExportedVersion] = []
        do {
            let export = try files.store.export { versions.append($0) }
            return MachineSnapshot(state: state, currentRevision: files.store.currentRevision, compactedRevision: export.compactedRevision,
                                   versions: versions, sessions: sessions)
        } catch {
            preconditionFailure("exporting a simulated store: \(error)")
        }
    }

    var fingerprint: MachineFingerprint {
        do {
            return MachineFingerprint(index: appliedIndex, revision: files.store.currentRevision, hash: try files.store.hashKV().hash, sessions: sessions)
        } catch {
            preconditionFailure("hashing a simulated store: \(error)")
        }
    }
}

/// A simulated member's LMDB files, removed when the machine that owns
/// them is dropped (a crash, an installed snapshot). On a RAM file system
/// when the machine has one: the simulator's stores never need to
/// survive, and a sweep opens thousands.
final class SimStoreFiles {
    let store: MVCCStore
    private let directory: String

    init() {
        let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        directory = base + "ballot-sim-\(UUID().uuidString)"
        var settings = MVCCSettings()
        settings.commitDurability = .none
        settings.verifyOnOpen = false
        settings.mapSizeBytes = Self.mapSizeBytes
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try MVCCStore(directory: directory, settings: settings)
        } catch {
            preconditionFailure("opening a simulated store in \(directory): \(error)")
        }
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A simulated run writes a few thousand small values: 64 MiB of
    /// address space each is plenty, and thousands of stores fit.
    static let mapSizeBytes = 64 << 20
}

/// The simulator replicates no leases or member records through commands.
struct NoApplyEffects: ApplyEffects {
    func leaseGranted(_ id: Int64, ttl: Int64) {}
    func leaseRevoked(_ id: Int64) {}
    func memberLearned(_ member: Etcdserverpb_Member) {}
    func memberRemoved(_ id: NodeID) {}
}

struct NoApplyMetrics: ApplyMetrics {
    func count(ranges: Int, puts: Int, deletes: Int) {}
    func count(_ request: TxnRequest, _ response: TxnResponse) {}
    func moveKeys(by change: Int) {}
}
