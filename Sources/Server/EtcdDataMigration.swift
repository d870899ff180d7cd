import Consensus
import Foundation
import Logging
import Storage

/// etcd → Ballot: a member started on an etcd data directory (what
/// `etcdctl snapshot restore` writes, or a stopped etcd member's own) takes
/// its data over: the backend `member/snap/db` is imported into Ballot's
/// store (`EtcdBackendImport`), and the member then founds the cluster its
/// flags describe, as etcd does after a restore.
///
/// Refused, with what to do instead, when the directory's data is not
/// whole or not this member's:
/// - its log (`member/wal`) names another member or cluster than the flags
///   found (etcd would keep the log's; the flags must match it);
/// - its log holds client writes the backend has not applied (a member
///   that crashed): start etcd once more, or restore a snapshot instead
///   (lease grants and compactions the backend may lack are redone);
/// - it is the directory of one member of a running multi-member cluster:
///   each member's backend may have applied a different amount, so each
///   would found the new cluster on different data. etcd's own recipe,
///   one snapshot restored on every member, gives them the same.
/// The etcd files are left as they were; the import is redone from them
/// until `ballot.version` marks the directory as Ballot's.
enum EtcdDataMigration {
    /// Where the imported data sits in the new cluster's log: where a new
    /// cluster's founding configuration entry would be.
    static let snapshotIndex = LogIndex(1)
    static let snapshotTerm = Term(1)

    static func snapPath(_ dataDirectory: String) -> String { dataDirectory + "/member/snap" }
    static func backendPath(_ dataDirectory: String) -> String { snapPath(dataDirectory) + "/db" }
    static func walPath(_ dataDirectory: String) -> String { dataDirectory + "/member/wal" }

    /// Imports an etcd data directory found at `config.dataDirectory`, if
    /// that is what is there.
    static func importIfPresent(config: ServerConfig, storeSettings: MVCCSettings, logger: Logger) throws {
        let root = config.dataDirectory
        let files = FileManager.default
        guard !DataDirectory.isMarked(root), files.fileExists(atPath: backendPath(root)) else { return }
        logger.info("found an etcd data directory; importing it", metadata: ["backend": "\(backendPath(root))"])
        guard config.initialClusterState == .new else {
            throw ConfigError.invalid(
                "\(root) holds etcd data to import, and a member that imports founds a cluster: start it with --initial-cluster-state new (or give a joining member an empty --data-dir)")
        }
        // What the log says is checked first: nothing is written for a refusal.
        let meta = try EtcdBackendImport.Meta(backend: backendPath(root))
        let wal = try EtcdWALSummary.read(directory: walPath(root))
        if let wal {
            let expected = (member: config.memberID.rawValue, cluster: config.foundingClusterID)
            guard wal.memberID == expected.member, wal.clusterID == expected.cluster else {
                throw ConfigError.invalid(
                    "\(walPath(root)) is member \(hex(wal.memberID)) of cluster \(hex(wal.clusterID)), but these flags found member \(hex(expected.member)) of cluster \(hex(expected.cluster)): give --name, --initial-cluster, --initial-cluster-token and --initial-advertise-peer-urls as the directory was made with (etcdctl snapshot restore's flags)")
            }
            let unapplied = wal.writes(after: meta.consistentIndex)
            guard unapplied == 0 else {
                throw ConfigError.invalid(
                    "\(walPath(root)) holds \(unapplied) client writes after index \(meta.consistentIndex), which its backend has not applied: start etcd on it once more and stop it cleanly, or restore a snapshot (etcdctl snapshot save, then etcdctl snapshot restore)")
            }
            guard config.initialCluster.count == 1 || !wal.servedClients else {
                throw ConfigError.invalid(
                    "\(root) is a running etcd cluster's member directory, and each member's may hold a different amount of the data: take one snapshot (etcdctl snapshot save) and restore it for every member (etcdctl snapshot restore --name ...), then start each on its restored directory")
            }
        }
        let dbPath = root + "/db"
        let staging = root + "/db.import"
        for stale in [staging, dbPath] where files.fileExists(atPath: stale) {
            // Left by an import cut short: no marker means nothing used it.
            try files.removeItem(atPath: stale)
        }
        try files.createDirectory(atPath: staging, withIntermediateDirectories: false)
        let store = try MVCCStore(directory: staging, settings: storeSettings)
        let redo = wal?.grantsAndCompactions(after: meta.consistentIndex) ?? []
        // The data stands for the founding configuration's first entry, as
        // etcd's restore makes it a snapshot at its configuration entries.
        let state = SnapshotMetadata(index: Self.snapshotIndex, term: Self.snapshotTerm, membership: Membership(voters: config.foundingVoters))
        let summary = try EtcdBackendImport.run(backend: backendPath(root), into: store, state: state, redo: redo) { versions in
            if versions % (10 * EtcdBackendImport.batchVersions) == 0 && versions > 0 {
                logger.info("import progress", metadata: ["versions": "\(versions)"])
            }
        }
        // The server's store leaves each commit's meta page to the next
        // flush: make the import's last commit durable before it counts.
        try store.sync()
        store.close()
        try files.moveItem(atPath: staging, toPath: dbPath)
        try DataDirectory.sync(root)
        logger.info("imported the etcd data", metadata: [
            "revision": "\(summary.revision)", "compacted": "\(summary.compactedRevision)", "versions": "\(summary.versions)",
            "leases": "\(summary.leases)", "etcd-files": "\(root)/member (left as they were)",
        ])
    }

    static func hex(_ id: UInt64) -> String { String(id, radix: 16) }
}
