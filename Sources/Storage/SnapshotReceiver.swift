import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A snapshot arriving in chunks from the leader, written to a temporary
/// file and put in place only when whole: its size and checksum must match
/// what the sender announced, and it is synced before it is renamed, so a
/// crash or a broken stream never leaves a snapshot that looks complete.
///
/// Owned by one task at a time (hence `@unchecked Sendable`).
public final class SnapshotReceiver: @unchecked Sendable {
    public let metadata: SnapshotMetadata
    public let size: Int
    public let checksum: UInt32
    public private(set) var written = 0
    private var crc: UInt32 = 0
    private let store: SnapshotStore
    private let temp: String
    private var fd: Int32

    /// The largest snapshot a member accepts: LMDB's map cannot hold more.
    public static let sizeMax = MVCCSettings.mapSizeBytesRange.upperBound

    init(store: SnapshotStore, metadata: SnapshotMetadata, size: Int, checksum: UInt32) throws(StorageError) {
        self.store = store
        self.metadata = metadata
        self.size = size
        self.checksum = checksum
        temp = store.paths(metadata).data + ".part-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: temp) }
    }

    deinit { abandon() }

    public func append(_ bytes: [UInt8]) throws(StorageError) {
        precondition(fd >= 0, "append after finish or abandon")
        guard written + bytes.count <= size else {
            throw .corrupt(path: temp, detail: "the sender announced \(size) bytes and sent more")
        }
        try WriteAheadLog.write(bytes, at: written, fd: fd, path: temp)
        written += bytes.count
        crc = CRC32C.checksum(bytes, seed: crc)
    }

    /// Verify, sync and put the snapshot in place.
    public func finish() throws(StorageError) -> SnapshotInfo {
        precondition(fd >= 0, "finish after finish or abandon")
        guard written == size, crc == checksum else {
            abandon()
            throw .corrupt(path: temp, detail: "received \(written) bytes with checksum \(crc); the sender announced \(size) and \(checksum)")
        }
        if fsync(fd) != 0 {
            let code = errno
            abandon()
            throw .io(errno: code, operation: "fsync", path: temp)
        }
        close(fd)
        fd = -1
        let (data, meta) = store.paths(metadata)
        if rename(temp, data) != 0 { throw .io(errno: errno, operation: "rename", path: data) }
        try WriteAheadLog.syncDirectory(store.directory)
        let info = SnapshotInfo(metadata: metadata, size: size, checksum: checksum, dataPath: data, metaPath: meta)
        try FileIO.writeAtomically(SnapshotStore.encode(info), to: meta)
        return info
    }

    /// Drop what arrived (a broken stream).
    public func abandon() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        unlink(temp)
    }
}

extension SnapshotStore {
    public func receiver(for metadata: SnapshotMetadata, size: Int, checksum: UInt32) throws(StorageError) -> SnapshotReceiver {
        guard size > 0 && size <= SnapshotReceiver.sizeMax else {
            throw .corrupt(path: directory, detail: "a snapshot of \(size) bytes was announced; at most \(SnapshotReceiver.sizeMax) fit")
        }
        return try SnapshotReceiver(store: self, metadata: metadata, size: size, checksum: checksum)
    }
}
