#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A member's data directory, laid out for an operator to read:
/// `wal/` (log segments), `snap/` (snapshots), `db/` (the LMDB store) and
/// `ballot.version`, which names the format, the cluster and the member, so
/// a data directory is never opened by the wrong cluster or a newer format,
/// and a member keeps the ID it was given whatever its flags say later.
public struct DataDirectory: Sendable, Equatable {
    public let root: String
    public var walPath: String { root + "/wal" }
    public var snapPath: String { root + "/snap" }
    public var dbPath: String { root + "/db" }
    public var markerPath: String { root + "/ballot.version" }
    public let clusterID: UInt64

    /// 2: member and cluster IDs derived as etcd derives them (a directory
    /// of format 1 holds members under the IDs of before).
    public static let formatVersion = 2

    /// What a member must not do once its log is gone: start again and
    /// vote or acknowledge as if it had never promised anything.
    public static let lostLogAdvice =
        "this member's votes and log are gone, so it cannot rejoin safely: remove it (etcdctl member remove), then add it back with an empty data directory"

    /// Opens `root`, creating the layout and marker if it is new. A
    /// directory that was used before (its marker exists) but lost `wal/`
    /// is refused: the log holds the member's votes, and a member that
    /// forgot them could vote twice in one term.
    ///
    /// `engine` names the consensus core writing the log ("raft" when nil,
    /// and for markers written before engines were recorded): a log one
    /// engine wrote is never read by the other.
    public static func open(_ root: String, clusterID: UInt64, memberID: UInt64? = nil, engine: String? = nil) throws(StorageError) -> DataDirectory {
        let directory = DataDirectory(root: root, clusterID: clusterID)
        var walCreated = false
        for path in [root, directory.walPath, directory.snapPath, directory.dbPath] {
            if mkdir(path, 0o755) == 0 {
                if path == directory.walPath { walCreated = true }
            } else if errno != EEXIST {
                throw .io(errno: errno, operation: "mkdir", path: path)
            }
        }
        let engineName = engine ?? defaultEngine
        let expected = "ballot-data \(formatVersion)\ncluster-id \(hex(clusterID))\n" + (memberID.map { "member-id \(hex($0))\n" } ?? "")
            + (engineName == defaultEngine ? "" : "engine \(engineName)\n")
        if let existing = try? FileIO.read(directory.markerPath) {
            if walCreated {
                _ = rmdir(directory.walPath)
                throw .corrupt(path: directory.walPath, detail: "missing from a data directory that was used before; " + lostLogAdvice)
            }
            let text = String(decoding: existing, as: UTF8.self)
            if let format = text.split(separator: "\n").first, format != "ballot-data \(formatVersion)" {
                throw .wrongDataDirectory(
                    path: directory.markerPath, found: String(format),
                    expected: "ballot-data \(formatVersion) (this Ballot does not read older formats: move the directory away and let the member rejoin empty, after etcdctl member remove and member add; for `ballot dev`, delete its data directory)")
            }
            // A marker written before member IDs were recorded has none.
            let fields = markerFields(text)
            if fields["cluster-id"] != hex(clusterID) || (memberID != nil && fields["member-id"].map { $0 != hex(memberID!) } ?? false) {
                throw .wrongDataDirectory(path: directory.markerPath, found: text.split(separator: "\n").joined(separator: ", "),
                                          expected: expected.split(separator: "\n").joined(separator: ", "))
            }
            let recorded = fields["engine"] ?? defaultEngine
            if recorded != engineName {
                throw .wrongDataDirectory(
                    path: directory.markerPath, found: "engine \(recorded)",
                    expected: "engine \(engineName) (this member's log was written by the \(recorded) engine: start it with --engine \(recorded); every member of a cluster runs the same engine)")
            }
        } else {
            try FileIO.writeAtomically(Array(expected.utf8), to: directory.markerPath)
        }
        return directory
    }

    /// The engine a marker without an `engine` line stands for.
    public static let defaultEngine = "raft"

    /// Whether `root` is a Ballot data directory (its marker exists).
    public static func isMarked(_ root: String) -> Bool {
        access(DataDirectory(root: root, clusterID: 0).markerPath, F_OK) == 0
    }

    /// The cluster ID a data directory used before was made for, or nil
    /// for a new (or unreadable) one.
    public static func recordedClusterID(_ root: String) -> UInt64? {
        recordedField(root, "cluster-id")
    }

    /// The member ID a data directory used before recorded, or nil (a new
    /// one, or one from before member IDs were recorded).
    public static func recordedMemberID(_ root: String) -> UInt64? {
        recordedField(root, "member-id")
    }

    private static func recordedField(_ root: String, _ name: String) -> UInt64? {
        guard let marker = try? FileIO.read(DataDirectory(root: root, clusterID: 0).markerPath) else { return nil }
        return markerFields(String(decoding: marker, as: UTF8.self))[name].flatMap { UInt64($0, radix: 16) }
    }

    /// The marker's `name value` lines after the format line.
    static func markerFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// fsync a directory, so the renames in it are durable.
    public static func sync(_ directory: String) throws(StorageError) { try WriteAheadLog.syncDirectory(directory) }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Whole-file operations with the durability the storage layer needs.
enum FileIO {
    static func read(_ path: String) throws(StorageError) -> [UInt8] { try WriteAheadLog.readFile(path) }

    /// Write to a temporary name, fsync, rename over `path`, fsync the
    /// directory: after a crash the file is either old or new, never torn.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StorageError) {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: temp) }
        do throws(StorageError) {
            try WriteAheadLog.writeAndSync(bytes, at: 0, fd: fd, path: temp)
            if fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: temp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if rename(temp, path) != 0 { throw .io(errno: errno, operation: "rename", path: path) }
        try WriteAheadLog.syncDirectory(parent(of: path))
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The CRC-32C and size of a file, read in chunks; `progress` sees bytes done.
    static func checksum(_ path: String, chunkBytes: Int = 1 << 20, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) -> (UInt32, Int) {
        var crc: UInt32 = 0
        var size = 0
        try readChunks(path, chunkBytes: chunkBytes) { chunk, done, total throws(StorageError) in
            crc = CRC32C.checksum(chunk, seed: crc)
            size = done
            progress(done, total)
        }
        return (crc, size)
    }

    /// Read a whole file in chunks, each with the bytes done and the total.
    static func readChunks(_ path: String, chunkBytes: Int, _ body: ([UInt8], Int, Int) throws(StorageError) -> Void) throws(StorageError) {
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: path) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw .io(errno: errno, operation: "fstat", path: path) }
        let total = Int(st.st_size)
        var done = 0
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        while done < total {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, min(chunkBytes, total - done), off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno: errno, operation: "pread", path: path)
            }
            if n == 0 { throw .corrupt(path: path, detail: "ends at \(done) of \(total) bytes") }
            done += n
            try body(Array(buffer[0..<n]), done, total)
        }
    }

    /// Stream chunks into a temporary file beside `target`, then, only if the
    /// bytes match `size` and `checksum`, fsync once, rename into place and
    /// sync the directory: the target is either untouched or whole.
    static func writeVerified(
        to target: String, size: Int, checksum: UInt32, corruptPath: String,
        _ chunks: (_ write: ([UInt8]) throws(StorageError) -> Void) throws(StorageError) -> Void
    ) throws(StorageError) {
        let temp = target + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: temp) }
        var written = 0
        var crc: UInt32 = 0
        do throws(StorageError) {
            try chunks { bytes throws(StorageError) in
                try WriteAheadLog.write(bytes, at: written, fd: fd, path: temp)
                written += bytes.count
                crc = CRC32C.checksum(bytes, seed: crc)
            }
            if written == size && crc == checksum && fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: temp) }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        close(fd)
        guard written == size, crc == checksum else {
            unlink(temp)
            throw .corrupt(path: corruptPath, detail: "got \(written) bytes with checksum \(crc); expected \(size) and \(checksum)")
        }
        if rename(temp, target) != 0 { throw .io(errno: errno, operation: "rename", path: target) }
        try WriteAheadLog.syncDirectory(parent(of: target))
    }
}
