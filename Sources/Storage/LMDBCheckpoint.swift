#if canImport(Glibc)
import Glibc
#endif

/// The last durability point of an LMDB file whose commits sync nothing
/// (`CommitDurability.checkpointed`), and the way back to it after a power
/// failure.
///
/// Why it is safe. Between checkpoints LMDB writes pages and meta pages
/// without flushing, so a power failure can leave any mix of them on disk:
/// a meta page naming pages that never arrived. Two things make the state
/// of the last checkpoint recoverable from any such mix:
/// - the checkpoint keeps a read transaction open on the state it flushed
///   (`LMDBEnvironment.pinned`), and LMDB never overwrites a page that an
///   open reader can see, so that state's pages stay on disk as they were
///   flushed until the next checkpoint is durable;
/// - the checkpoint saves that state's two meta pages in a file of their
///   own (this type), flushed before the pin moves. At open, the saved
///   meta pages are written back over the data file's (`restore`), and
///   LMDB opens at exactly the flushed state, every later page being free
///   in it. What the store loses is what it applied since, which the
///   write-ahead log still holds (it is compacted only through a checkpoint).
///
/// The file holds two slots, written alternately, each with a sequence
/// number and a CRC-32C, so that a crash while writing one leaves the
/// other, whose state is still pinned. A slot also names the data file's
/// device and inode: a file replaced since (a snapshot installed, a
/// defragmentation) is never given another file's meta pages.
struct LMDBCheckpoint {
    static let fileName = "data.mdb.checkpoint"
    static let magic: UInt64 = 0x3174_706B_6374_6C62  // "blctkpt1"
    /// magic, sequence, device, inode, page size: then two pages, then a CRC.
    static let headerBytes = 40
    static let pageSizeMax = 65_536

    struct Slot: Equatable {
        var sequence: UInt64
        var device: UInt64
        var inode: UInt64
        var metaPages: [UInt8]
    }

    static func slotBytes(pageSize: Int) -> Int { headerBytes + 2 * pageSize + 4 }

    static func encode(_ slot: Slot) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(slotBytes(pageSize: slot.metaPages.count / 2))
        for value in [magic, slot.sequence, slot.device, slot.inode, UInt64(slot.metaPages.count / 2)] {
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
        }
        bytes.append(contentsOf: slot.metaPages)
        let crc = CRC32C.checksum(bytes, seed: 0)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: crc >> (8 * i))) }
        return bytes
    }

    /// The slot at the start of `bytes`, or nil if it is torn, blank or not one.
    static func decode(_ bytes: ArraySlice<UInt8>) -> Slot? {
        func word(_ at: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[bytes.startIndex + at + $1]) << (8 * $1) }
        }
        guard bytes.count >= headerBytes, word(0) == magic else { return nil }
        let pageSize = Int(clamping: word(32))
        guard (512...pageSizeMax).contains(pageSize), bytes.count >= slotBytes(pageSize: pageSize) else { return nil }
        let body = bytes.prefix(headerBytes + 2 * pageSize)
        let stored = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[body.endIndex + $1]) << (8 * $1) }
        guard CRC32C.checksum(Array(body), seed: 0) == stored else { return nil }
        return Slot(sequence: word(8), device: word(16), inode: word(24), metaPages: Array(body.dropFirst(headerBytes)))
    }

    /// The newest whole slot in the checkpoint file of `directory`; nil without one.
    static func newest(in directory: String) throws(StorageError) -> Slot? {
        let path = directory + "/" + fileName
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .io(errno: errno, operation: "open", path: path)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while bytes.count <= 2 * slotBytes(pageSize: pageSizeMax) {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno: errno, operation: "read", path: path)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        // The second slot starts after the first, whose size follows from
        // the page size: the first slot's, or (when that slot is torn, a
        // crash while writing it) each page size LMDB may use.
        let first = decode(bytes[...])
        let pageSizes = first.map { [$0.metaPages.count / 2] } ?? pageSizesPossible
        let second = pageSizes.lazy.compactMap { size -> Slot? in
            guard let slot = decode(bytes.dropFirst(slotBytes(pageSize: size))), slot.metaPages.count == 2 * size else { return nil }
            return slot
        }.first
        return [first, second].compactMap { $0 }.max { $0.sequence < $1.sequence }
    }

    static let pageSizesPossible = [4096, 512, 1024, 2048, 8192, 16_384, 32_768, 65_536]

    /// The data file's identity, as a slot records it.
    static func identity(of path: String) throws(StorageError) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        if stat(path, &info) != 0 {
            if errno == ENOENT { return nil }
            throw .io(errno: errno, operation: "stat", path: path)
        }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Before LMDB opens `directory`: put the last checkpoint's meta pages
    /// back in the data file, if it is the file they were saved from and
    /// they differ from what it holds. Returns whether it did.
    @discardableResult
    static func restore(in directory: String) throws(StorageError) -> Bool {
        let dataPath = directory + "/data.mdb"
        guard let slot = try newest(in: directory), let identity = try identity(of: dataPath),
              identity == (slot.device, slot.inode) else { return false }
        let fd = open(dataPath, O_RDWR)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: dataPath) }
        defer { close(fd) }
        var current = [UInt8](repeating: 0, count: slot.metaPages.count)
        let n = current.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
        if n == current.count && current == slot.metaPages { return false }
        try WriteAheadLog.write(slot.metaPages, at: 0, fd: fd, path: dataPath)
        if fdatasync(fd) != 0 { throw .io(errno: errno, operation: "fdatasync", path: dataPath) }
        return true
    }

    /// The checkpoint file of one open data file: the slot written next.
    final class Writer {
        let path: String
        let dataPath: String
        private let fd: Int32
        private var sequence: UInt64

        init(directory: String) throws(StorageError) {
            path = directory + "/" + LMDBCheckpoint.fileName
            dataPath = directory + "/data.mdb"
            sequence = try LMDBCheckpoint.newest(in: directory)?.sequence ?? 0
            let existed = access(path, F_OK) == 0
            fd = open(path, O_RDWR | O_CREAT, 0o644)
            if fd < 0 { throw .io(errno: errno, operation: "open", path: path) }
            if !existed { try WriteAheadLog.syncDirectory(directory) }
        }

        deinit { close(fd) }

        /// The data file's first two pages, `pageSize` each (the meta
        /// pages of its last commit, when no commit is under way).
        func metaPages(pageSize: Int) throws(StorageError) -> [UInt8] {
            precondition((512...LMDBCheckpoint.pageSizeMax).contains(pageSize), "page size \(pageSize)")
            let data = open(dataPath, O_RDONLY)
            if data < 0 { throw .io(errno: errno, operation: "open", path: dataPath) }
            defer { close(data) }
            var pages = [UInt8](repeating: 0, count: 2 * pageSize)
            let n = pages.withUnsafeMutableBytes { pread(data, $0.baseAddress!, $0.count, 0) }
            if n != pages.count { throw .io(errno: n < 0 ? errno : EIO, operation: "pread", path: dataPath) }
            return pages
        }

        /// Record `pages` (from `metaPages`, of a state whose pages are now
        /// flushed) as the state to return to, durably.
        func save(_ pages: [UInt8]) throws(StorageError) {
            guard let identity = try LMDBCheckpoint.identity(of: dataPath) else {
                throw .io(errno: ENOENT, operation: "stat", path: dataPath)
            }
            let pageSize = pages.count / 2
            sequence += 1
            let slot = Slot(sequence: sequence, device: identity.device, inode: identity.inode, metaPages: pages)
            let offset = Int(sequence % 2) * LMDBCheckpoint.slotBytes(pageSize: pageSize)
            try WriteAheadLog.write(LMDBCheckpoint.encode(slot), at: offset, fd: fd, path: path)
            if fdatasync(fd) != 0 { throw .io(errno: errno, operation: "fdatasync", path: path) }
        }
    }
}
