import Crypto
import Foundation
import Storage

/// `ballot snapshot restore`: puts a backup (an `etcdctl snapshot save`
/// file, from etcd or from Ballot) where a member's first start imports it
/// (`EtcdDataMigration`): `<data-dir>/member/snap/db`, etcd's place for
/// it, checked as `etcdctl snapshot restore` checks it (the SHA-256 that
/// etcd's Snapshot RPC appends; a bbolt file with etcd's buckets). Member
/// and cluster IDs come from the flags the member then starts with, so
/// each member of a new cluster restores the same file into its own
/// directory and starts with its own name.
public enum SnapshotRestore {
    public enum Failure: Error, CustomStringConvertible {
        case dataDirectoryExists(String)
        case missingHash
        case hashMismatch(expected: String, got: String)
        case unreadable(String)

        public var description: String {
            switch self {
            case .dataDirectoryExists(let path): "data-dir \"\(path)\" exists"
            case .missingHash: "snapshot missing hash but --skip-hash-check=false"
            case .hashMismatch(let expected, let got): "expected sha256 \(expected), got \(got)"
            case .unreadable(let detail): detail
            }
        }
    }

    /// Restores `file` into the new data directory `dataDirectory`;
    /// `progress` hears each tenth of the bytes copied; returns what was
    /// restored, for the operator.
    public static func run(file: String, dataDirectory: String, skipHashCheck: Bool,
                           progress: (_ percent: Int, _ bytes: Int) -> Void = { _, _ in }) throws -> String {
        let files = FileManager.default
        if files.fileExists(atPath: dataDirectory) { throw Failure.dataDirectoryExists(dataDirectory) }
        guard let handle = FileHandle(forReadingAtPath: file) else { throw Failure.unreadable("cannot open \(file)") }
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        // etcd's test for a trailing hash: a bbolt file is whole pages.
        let hashed = size % 512 == SHA256.byteCount
        if !hashed && !skipHashCheck { throw Failure.missingHash }
        let dbBytes = hashed ? size - SHA256.byteCount : size
        let snapDirectory = EtcdDataMigration.snapPath(dataDirectory)
        try files.createDirectory(atPath: snapDirectory, withIntermediateDirectories: true)
        let target = EtcdDataMigration.backendPath(dataDirectory)
        do {
            guard files.createFile(atPath: target, contents: nil), let out = FileHandle(forWritingAtPath: target) else {
                throw Failure.unreadable("cannot create \(target)")
            }
            defer { try? out.close() }
            var hash = SHA256()
            try handle.seek(toOffset: 0)
            var done = 0
            var tenths = ProgressTenths(total: dbBytes)
            while done < dbBytes {
                guard let chunk = try handle.read(upToCount: min(1 << 20, dbBytes - done)), !chunk.isEmpty else {
                    throw Failure.unreadable("\(file) ended at \(done) of \(dbBytes) bytes")
                }
                hash.update(data: chunk)
                try out.write(contentsOf: chunk)
                done += chunk.count
                if let percent = tenths.advance(to: done) { progress(percent, done) }
            }
            if hashed && !skipHashCheck {
                let expected = Data(try handle.read(upToCount: SHA256.byteCount) ?? Data())
                let got = Data(hash.finalize())
                if expected != got { throw Failure.hashMismatch(expected: hex(expected), got: hex(got)) }
            }
            try out.synchronize()
            // A bbolt file with etcd's buckets, or nothing is left behind.
            let meta = try EtcdBackendImport.Meta(backend: target)
            try DataDirectory.sync(snapDirectory)
            return "restored snapshot \(file) (\(dbBytes) bytes, consistent index \(meta.consistentIndex)) to \(target); "
                + "start each member on its own restored directory with the cluster's flags and --initial-cluster-state new"
        } catch {
            try? files.removeItem(atPath: dataDirectory)
            throw error
        }
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}
