import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A snapshot on disk: `<term>-<index>.snap` holds a compacted copy of the
/// LMDB store; `<term>-<index>.meta` holds what it is (index, term,
/// membership), its size and CRC-32C, and a CRC of the metadata itself.
/// The data file is renamed into place before the metadata, so a `.meta`
/// exists only for a complete snapshot.
public struct SnapshotInfo: Sendable, Equatable {
    public var metadata: SnapshotMetadata
    public var size: Int
    public var checksum: UInt32
    public var dataPath: String
    public var metaPath: String
}

/// The snapshots in a data directory's `snap/`.
public struct SnapshotStore: Sendable {
    public let directory: String
    public static let chunkBytesDefault = 1 << 20
    static let magic = Array("BALLOTS1".utf8)

    public init(directory: String) { self.directory = directory }

    func paths(_ m: SnapshotMetadata) -> (data: String, meta: String) {
        let base = directory + "/" + DataDirectory.hex(m.term.rawValue) + "-" + DataDirectory.hex(m.index.rawValue)
        return (base + ".snap", base + ".meta")
    }

    /// Snapshot `store` as it is now, while writers go on: LMDB copies from
    /// one read transaction, and the copy is named after the consensus state
    /// recorded inside it (`MVCCStore.recordApplied`), so the metadata always
    /// matches the data, whatever was applied meanwhile. The store's file
    /// must not be replaced during the copy.
    @discardableResult
    public func capture(_ store: MVCCStore, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) -> SnapshotInfo {
        let temp = directory + "/capture.tmp"
        try store.environment.copy(toFile: temp, synced: true)
        guard let metadata = try MVCCStore.appliedState(inCopy: temp, settings: store.settings) else {
            unlink(temp)
            throw .corrupt(path: store.directory + "/data.mdb", detail: "the store records no applied consensus state to snapshot")
        }
        let (data, meta) = paths(metadata)
        let (crc, size) = try FileIO.checksum(temp, progress: progress)
        if rename(temp, data) != 0 { throw .io(errno: errno, operation: "rename", path: data) }
        try WriteAheadLog.syncDirectory(directory)
        let info = SnapshotInfo(metadata: metadata, size: size, checksum: crc, dataPath: data, metaPath: meta)
        try FileIO.writeAtomically(Self.encode(info), to: meta)
        return info
    }

    /// Delete every snapshot older than `index`: they exist only to be
    /// sent or installed, and the store itself is the durable state. Newer
    /// ones stay (one may be arriving for install).
    public func prune(below index: LogIndex) throws(StorageError) {
        for info in try all() where info.metadata.index < index {
            unlink(info.metaPath)
            unlink(info.dataPath)
        }
    }

    /// Every complete snapshot (by its metadata), unverified.
    func all() throws(StorageError) -> [SnapshotInfo] {
        guard let dir = opendir(directory) else { throw .io(errno: errno, operation: "opendir", path: directory) }
        var metas: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasSuffix(".meta") { metas.append(name) }
        }
        closedir(dir)
        var infos: [SnapshotInfo] = []
        for name in metas {
            let path = directory + "/" + name
            guard let info = Self.decode(try FileIO.read(path), metaPath: path) else {
                throw .corrupt(path: path, detail: "snapshot metadata fails its checksum")
            }
            infos.append(info)
        }
        return infos
    }

    /// The complete snapshot taken at exactly `index`, verified; nil if none.
    public func snapshot(at index: LogIndex, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) -> SnapshotInfo? {
        guard let info = try all().first(where: { $0.metadata.index == index }) else { return nil }
        try verify(info, progress: progress)
        return info
    }

    /// The newest complete snapshot, fully verified; nil if there is none.
    /// A damaged one refuses, naming the file: never fall back silently to
    /// an older snapshot, which could lack acknowledged writes the log no
    /// longer holds.
    public func latest(progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) -> SnapshotInfo? {
        // Names sort by term then index; the newest snapshot has the highest index.
        guard let best = try all().max(by: { $0.metadata.index < $1.metadata.index }) else { return nil }
        try verify(best, progress: progress)
        return best
    }

    public func verify(_ info: SnapshotInfo, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) {
        let (crc, size) = try FileIO.checksum(info.dataPath, progress: progress)
        if size != info.size || crc != info.checksum {
            throw .corrupt(path: info.dataPath, detail: "snapshot data has \(size) bytes and checksum \(crc); its metadata says \(info.size) and \(info.checksum)")
        }
    }

    /// Stream a snapshot in chunks (to a follower), with progress.
    public func read(_ info: SnapshotInfo, chunkBytes: Int = chunkBytesDefault, _ chunk: ([UInt8], _ done: Int, _ total: Int) throws(StorageError) -> Void) throws(StorageError) {
        try FileIO.readChunks(info.dataPath, chunkBytes: chunkBytes) { bytes, done, total throws(StorageError) in
            if total != info.size { throw .corrupt(path: info.dataPath, detail: "holds \(total) bytes; its metadata says \(info.size)") }
            try chunk(bytes, done, total)
        }
    }

    /// Replace the LMDB store in `dbDirectory` by a snapshot in one streaming
    /// pass: copied in chunks while checksumming, renamed into place only if
    /// it matches its metadata, so a crash leaves the old store or the new
    /// one. The store must be closed.
    public func restore(_ info: SnapshotInfo, into dbDirectory: String, progress: (Int, Int) -> Void = { _, _ in }) throws(StorageError) {
        try FileIO.writeVerified(to: dbDirectory + "/data.mdb", size: info.size, checksum: info.checksum, corruptPath: info.dataPath) {
            write throws(StorageError) in
            try read(info) { chunk, done, total throws(StorageError) in
                try write(chunk)
                progress(done, total)
            }
        }
        unlink(dbDirectory + "/lock.mdb")
    }

    static func encode(_ info: SnapshotInfo) -> [UInt8] {
        var w = BinaryWriter()
        w.bytes.append(contentsOf: magic)
        w.u64(info.metadata.index.rawValue)
        w.u64(info.metadata.term.rawValue)
        ConsensusCodec.encode(info.metadata.membership, into: &w)
        w.u64(UInt64(info.size))
        w.u32(info.checksum)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], metaPath: String) -> SnapshotInfo? {
        guard bytes.count > magic.count + 4, Array(bytes.prefix(magic.count)) == magic else { return nil }
        let body = Array(bytes.dropLast(4))
        var tail = BinaryReader(Array(bytes.suffix(4)))
        guard tail.u32() == CRC32C.checksum(body) else { return nil }
        var r = BinaryReader(body)
        r.offset = magic.count
        guard let index = r.u64(), let term = r.u64(), let membership = ConsensusCodec.decodeMembership(&r),
            let size = r.u64(), let crc = r.u32(), r.atEnd
        else { return nil }
        let metadata = SnapshotMetadata(index: LogIndex(index), term: Term(term), membership: membership)
        let data = String(metaPath.dropLast(".meta".count)) + ".snap"
        return SnapshotInfo(metadata: metadata, size: Int(size), checksum: crc, dataPath: data, metaPath: metaPath)
    }
}
