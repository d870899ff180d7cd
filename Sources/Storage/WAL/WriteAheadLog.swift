import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ballot's write-ahead log: the durable record of a member's hard state,
/// log entries and snapshot markers.
///
/// Segments are preallocated files named `<sequence>-<first index>.wal`.
/// A record is `[length u32][type u8][crc u32][payload]`; each CRC-32C
/// continues from the previous record's, and every segment opens with a
/// seed record carrying the chain value, then the current hard state and
/// snapshot marker, so old segments can be deleted without losing either.
///
/// The entries of one append are all-or-nothing: a batch record (first
/// index and count) precedes them and recovery keeps them only when all
/// arrived. An entry record replaces the log from its index on, so a torn
/// prefix of a rewrite would otherwise cut entries the append was only
/// repeating: Multi-Paxos rewrites slots it had accepted (and
/// acknowledged) whenever it fills a lower one.
/// Nothing is acknowledged before `sync()` returns: one `fdatasync` covers
/// every record appended since the last (group commit).
///
/// Opening verifies everything. A torn record at the very tail of the
/// newest segment (a crash mid-write: its sync never returned) is cut off
/// and reported. Any other damage (a checksum mismatch elsewhere, a missing
/// segment, a gap in indexes, a hard state past the log) refuses to open,
/// naming the file and byte offset: the data could have been acknowledged.
public final class WriteAheadLog {
    enum RecordType: UInt8 {
        case seed = 1, hardState = 2, entry = 3, snapshot = 4, batch = 5
    }

    struct Segment {
        var sequence: UInt64
        var firstIndex: LogIndex
        var path: String
    }

    public let directory: String
    public let settings: WALSettings
    private var segments: [Segment]
    private var fd: Int32
    private var writeOffset: Int
    private var chain: UInt32
    private var pending: [UInt8] = []
    private var hardState: HardState
    private var snapshot: SnapshotMarker?
    /// The last entry index written or queued.
    public private(set) var lastIndex: LogIndex
    /// Test-only: write only this many bytes of the next sync, then crash.
    @_spi(FaultInjection) public var tearNextSyncAfterBytes: Int?
    /// Test-only: after this many more syncs, every sync reports that
    /// `fdatasync` failed with EIO and keeps none of its bytes: the worst a
    /// failed flush can mean (after one, what the disk holds is unknown).
    /// Kernels give no portable way to make fsync fail on demand.
    @_spi(FaultInjection) public var failSyncsAfter: Int?

    static let headerBytes = 9

    /// Opens the log in `directory` (created if missing), recovering what it holds.
    public static func open(directory: String, settings: WALSettings = WALSettings()) throws(StorageError) -> (WriteAheadLog, WALRecovery) {
        precondition(WALSettings.segmentBytesRange.contains(settings.segmentBytes), "segmentBytes out of range")
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw .io(errno: errno, operation: "mkdir", path: directory) }
        var found = try listSegments(directory)
        if found.isEmpty {
            let first = try createSegment(directory, sequence: 0, firstIndex: 1, settings: settings)
            found = [first]
        }
        let (recovery, chain, endOffset) = try recover(found, settings: settings)
        let last = found.last!
        let fd = Glibc.open(last.path, O_WRONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: last.path) }
        let wal = WriteAheadLog(
            directory: directory, settings: settings, segments: found, fd: fd, writeOffset: endOffset, chain: chain,
            recovery: recovery)
        if endOffset == 0 {
            // A fresh segment: start it with its seed and the current state.
            wal.appendSegmentHeader()
            try wal.sync()
        }
        return (wal, recovery)
    }

    private init(directory: String, settings: WALSettings, segments: [Segment], fd: Int32, writeOffset: Int, chain: UInt32, recovery: WALRecovery) {
        self.directory = directory
        self.settings = settings
        self.segments = segments
        self.fd = fd
        self.writeOffset = writeOffset
        self.chain = chain
        self.hardState = recovery.hardState
        self.snapshot = recovery.snapshot
        self.lastIndex = recovery.entries.last?.index ?? recovery.snapshot?.index ?? .zero
    }

    deinit { close(fd) }

    // MARK: Appending

    /// Queue a Ready's hard state and entries; durable after `sync()`.
    public func append(hardState newState: HardState?, entries: [Entry]) throws(StorageError) {
        try append(Self.encode(hardState: newState, entries: entries), hardState: newState, firstEntry: entries.first?.index)
    }

    /// Queue a snapshot received from the leader together with the entries
    /// the member keeps after it, and a hard state: the marker and the
    /// entries are one batch, so a crash cannot keep the marker (which
    /// replaces the log) without them.
    public func append(snapshot marker: SnapshotMarker, thenEntries entries: [Entry], hardState newState: HardState?) throws(StorageError) {
        guard let first = entries.first else {
            try append(snapshot: marker)
            if newState != nil { try append(hardState: newState, entries: []) }
            return
        }
        precondition(first.index > marker.index, "entries after a snapshot follow it")
        try append(Self.encode(hardState: newState, entries: entries, snapshot: marker), hardState: newState, firstEntry: first.index)
    }

    /// Records for a batch header, perhaps a snapshot marker, the entries,
    /// then a hard state, encoded once.
    static func encode(hardState: HardState?, entries: [Entry], snapshot: SnapshotMarker? = nil) -> [(RecordType, [UInt8])] {
        precondition(zip(entries, entries.dropFirst()).allSatisfy { $1.index == $0.index + 1 }, "entries of one append are contiguous")
        var records: [(RecordType, [UInt8])] = []
        if let first = entries.first {
            records.reserveCapacity(entries.count + 3)
            records.append((.batch, encodeBatch(first: first.index, count: entries.count, withSnapshot: snapshot != nil)))
            if let snapshot { records.append((.snapshot, encode(snapshot, role: .batchInstall))) }
            for entry in entries { records.append((.entry, ConsensusCodec.encode(entry))) }
        }
        if let hardState { records.append((.hardState, ConsensusCodec.encode(hardState))) }
        return records
    }

    /// Append `records` (from `encode`: a batch header and entries from
    /// `firstEntry` on, then perhaps a hard state). `lastIndex` moves with
    /// each entry, so a segment that a rotation starts part-way is named
    /// after the first entry it holds: `releaseSegments` trusts that name.
    func append(_ records: [(RecordType, [UInt8])], hardState newState: HardState?, firstEntry: LogIndex?) throws(StorageError) {
        var next = firstEntry
        for (number, (type, payload)) in records.enumerated() {
            if type == .batch {
                guard let index = next else { preconditionFailure("a batch header without a first index") }
                // A snapshot marker stays in its batch header's segment: a
                // new segment's header between them would repeat the old
                // snapshot as if it were part of the batch.
                if number + 1 < records.count, records[number + 1].0 == .snapshot,
                   writeOffset + pending.count + 2 * Self.headerBytes + payload.count + records[number + 1].1.count > settings.segmentBytes {
                    try rotate(firstIndex: index)
                }
                try appendRecord(type, payload, nextIndex: index)
            } else if type == .snapshot {
                guard let marker = Self.decodeSnapshot(payload) else { preconditionFailure("an undecodable marker was encoded") }
                try appendMarker(marker, record: payload)
            } else if type == .entry {
                guard let index = next else { preconditionFailure("entry records without a first index") }
                try appendRecord(type, payload, nextIndex: index)
                lastIndex = index
                next = index + 1
            } else {
                try appendRecord(type, payload, nextIndex: lastIndex + 1)
            }
        }
        if let newState { hardState = newState }
    }

    /// Queue a snapshot marker; durable after `sync()`.
    public func append(snapshot marker: SnapshotMarker) throws(StorageError) {
        try appendMarker(marker, record: Self.encode(marker))
    }

    /// Queue `marker`, encoded as `record` (which says its role).
    private func appendMarker(_ marker: SnapshotMarker, record: [UInt8]) throws(StorageError) {
        try appendRecord(.snapshot, record, nextIndex: marker.replacesLog ? marker.index + 1 : lastIndex + 1)
        snapshot = marker
        if marker.replacesLog || marker.index > lastIndex { lastIndex = marker.index }
    }

    /// Write everything queued and make it durable with one `fdatasync`.
    public func sync() throws(StorageError) {
        guard !pending.isEmpty else { return }
        let path = segments.last!.path
        var bytes = pending
        pending = []
        if let tear = tearNextSyncAfterBytes {
            // Test-only: a crash in the middle of the write.
            bytes = Array(bytes.prefix(tear))
            try writeAll(bytes, path)
            _exit(86)
        }
        if let left = failSyncsAfter {
            // Test-only: the disk fails the flush and keeps none of it.
            if left <= 0 { throw .io(errno: EIO, operation: "fdatasync", path: path) }
            failSyncsAfter = left - 1
        }
        try writeAll(bytes, path)
        if fdatasync(fd) != 0 { throw .io(errno: errno, operation: "fdatasync", path: path) }
    }

    // MARK: Group commit support

    /// Whether appending `records` would start a new segment.
    func wouldRotate(_ records: [(RecordType, [UInt8])]) -> Bool {
        let framed = records.reduce(0) { $0 + Self.headerBytes + $1.1.count }
        return writeOffset + pending.count + framed > settings.segmentBytes
    }

    /// Hand the queued bytes to a writer that works outside the caller's
    /// lock: the bytes, where they go, and the file. The range is reserved,
    /// so records queued meanwhile land after it.
    func takePending() -> (bytes: [UInt8], offset: Int, fd: Int32, path: String) {
        let taken = (pending, writeOffset, fd, segments.last!.path)
        writeOffset += pending.count
        pending = []
        return taken
    }

    static func writeAndSync(_ bytes: [UInt8], at offset: Int, fd: Int32, path: String) throws(StorageError) {
        try write(bytes, at: offset, fd: fd, path: path)
        if fdatasync(fd) != 0 { throw .io(errno: errno, operation: "fdatasync", path: path) }
    }

    /// `pwrite` all of `bytes` at `offset`, across short writes and interrupts.
    static func write(_ bytes: [UInt8], at offset: Int, fd: Int32, path: String) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno: errno, operation: "pwrite", path: path)
            }
            done += n
        }
    }

    private func writeAll(_ bytes: [UInt8], _ path: String) throws(StorageError) {
        try Self.write(bytes, at: writeOffset, fd: fd, path: path)
        writeOffset += bytes.count
    }

    /// Frame one record; if it does not fit the segment, start the next,
    /// named after `nextIndex`: the first entry that can follow.
    private func appendRecord(_ type: RecordType, _ payload: [UInt8], nextIndex: LogIndex) throws(StorageError) {
        precondition(payload.count <= WALSettings.recordBytesMax, "record of \(payload.count) bytes")
        if writeOffset + pending.count + Self.headerBytes + payload.count > settings.segmentBytes {
            try rotate(firstIndex: nextIndex)
        }
        frame(type, payload)
    }

    private func frame(_ type: RecordType, _ payload: [UInt8]) {
        var crc = CRC32C.checksum([type.rawValue], seed: type == .seed ? 0 : chain)
        crc = CRC32C.checksum(payload, seed: crc)
        let length = UInt32(payload.count)
        pending.reserveCapacity(pending.count + Self.headerBytes + payload.count)
        for i in 0..<4 { pending.append(UInt8(truncatingIfNeeded: length >> (8 * i))) }
        pending.append(type.rawValue)
        for i in 0..<4 { pending.append(UInt8(truncatingIfNeeded: crc >> (8 * i))) }
        pending.append(contentsOf: payload)
        chain = type == .seed ? Self.seedValue(payload) : crc
    }

    private func appendSegmentHeader() {
        var seed = BinaryWriter()
        seed.u32(chain)
        frame(.seed, seed.bytes)
        frame(.hardState, ConsensusCodec.encode(hardState))
        if var snapshot {
            // Only a reminder that the snapshot exists: replaying it must
            // not drop the entries written after it in earlier segments.
            // Marked as one, so recovery tells it from a marker of its own.
            snapshot.replacesLog = false
            frame(.snapshot, Self.encode(snapshot, role: .reminder))
        }
    }

    /// Close the full segment durably and start the next one.
    private func rotate(firstIndex: LogIndex) throws(StorageError) {
        try sync()
        let current = segments.last!
        if fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: current.path) }
        let next = try Self.createSegment(directory, sequence: current.sequence + 1, firstIndex: firstIndex, settings: settings)
        close(fd)
        fd = Glibc.open(next.path, O_WRONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: next.path) }
        segments.append(next)
        writeOffset = 0
        appendSegmentHeader()
    }

    /// Delete segments whose every entry is covered by a snapshot at `index`.
    public func releaseSegments(coveredThrough index: LogIndex) throws(StorageError) {
        while segments.count > 1, segments[1].firstIndex - 1 <= index {
            if unlink(segments[0].path) != 0 { throw .io(errno: errno, operation: "unlink", path: segments[0].path) }
            segments.removeFirst()
        }
        try Self.syncDirectory(directory)
    }

    public var segmentCount: Int { segments.count }

    // MARK: Files

    static func name(sequence: UInt64, firstIndex: LogIndex) -> String {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return "\(hex(sequence))-\(hex(firstIndex.rawValue)).wal"
    }

    static func listSegments(_ directory: String) throws(StorageError) -> [Segment] {
        guard let dir = opendir(directory) else { throw .io(errno: errno, operation: "opendir", path: directory) }
        defer { closedir(dir) }
        var result: [Segment] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard name.hasSuffix(".wal") else { continue }
            let parts = name.dropLast(4).split(separator: "-")
            guard parts.count == 2, let seq = UInt64(parts[0], radix: 16), let first = UInt64(parts[1], radix: 16) else {
                throw .corrupt(path: directory + "/" + name, detail: "not a segment name this code writes")
            }
            result.append(Segment(sequence: seq, firstIndex: LogIndex(first), path: directory + "/" + name))
        }
        result.sort { $0.sequence < $1.sequence }
        for (a, b) in zip(result, result.dropFirst()) where b.sequence != a.sequence + 1 {
            throw .corrupt(path: directory, detail: "segment \(a.sequence + 1) is missing between \(a.path) and \(b.path)")
        }
        return result
    }

    /// Create a preallocated segment under a temporary name, sync it, then
    /// rename it into place and sync the directory, so a crash leaves
    /// either no segment or a whole one.
    static func createSegment(_ directory: String, sequence: UInt64, firstIndex: LogIndex, settings: WALSettings) throws(StorageError) -> Segment {
        let final = directory + "/" + name(sequence: sequence, firstIndex: firstIndex)
        let temp = final + ".tmp"
        let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: temp) }
        defer { close(fd) }
        try zeroFill(fd, from: 0, to: settings.segmentBytes, path: temp)
        if fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: temp) }
        if rename(temp, final) != 0 { throw .io(errno: errno, operation: "rename", path: final) }
        try syncDirectory(directory)
        return Segment(sequence: sequence, firstIndex: firstIndex, path: final)
    }

    /// Write real zeros over `[start, end)`, rather than `fallocate` or a
    /// hole: on ext4 and XFS a preallocated range is "unwritten", and the
    /// first write into each of its blocks makes `fdatasync` commit the
    /// filesystem journal too, so a sync's cost grows with the blocks it
    /// touches. Over written zeros a sync flushes data only, and one that
    /// carries many appends costs about as much as one carrying one
    /// (measured in BENCHMARKS.md: this is what makes group commit pay).
    static func zeroFill(_ fd: Int32, from start: Int, to end: Int, path: String) throws(StorageError) {
        let chunk = [UInt8](repeating: 0, count: zeroFillChunkBytes)
        var offset = start
        while offset < end {
            let piece = min(chunk.count, end - offset)
            try write(piece == chunk.count ? chunk : Array(chunk.prefix(piece)), at: offset, fd: fd, path: path)
            offset += piece
        }
    }

    static let zeroFillChunkBytes = 1 << 20

    static func syncDirectory(_ directory: String) throws(StorageError) {
        let fd = Glibc.open(directory, O_RDONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: directory) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: directory) }
    }

    /// What a marker record is, in its flag byte: recovery must tell a
    /// batch's own marker and a segment header's reminder from a marker
    /// written on its own (after a torn batch, say).
    enum MarkerRole: UInt8 {
        /// A local snapshot (compaction): later entries stay.
        case local = 0
        /// A snapshot from the leader, written alone: it replaces the log.
        case install = 1
        /// A segment header's reminder of the latest snapshot.
        case reminder = 2
        /// A snapshot from the leader that opens a batch with the entries kept after it.
        case batchInstall = 3
    }

    static func encode(_ m: SnapshotMarker, role: MarkerRole? = nil) -> [UInt8] {
        let role = role ?? (m.replacesLog ? .install : .local)
        precondition(m.replacesLog == (role == .install || role == .batchInstall), "marker \(m) written as \(role)")
        var w = BinaryWriter()
        w.u64(m.index.rawValue)
        w.u64(m.term.rawValue)
        w.u8(role.rawValue)
        ConsensusCodec.encode(m.membership, into: &w)
        return w.bytes
    }

    static func decodeSnapshot(_ bytes: [UInt8]) -> SnapshotMarker? { decodeSnapshotRecord(bytes)?.marker }

    /// A marker and its role (logs written before roles were recorded
    /// hold reminders as local markers).
    static func decodeSnapshotRecord(_ bytes: [UInt8]) -> (marker: SnapshotMarker, role: MarkerRole)? {
        var r = BinaryReader(bytes)
        guard let i = r.u64(), let t = r.u64(), let f = r.u8(), let role = MarkerRole(rawValue: f),
              let m = ConsensusCodec.decodeMembership(&r), r.atEnd
        else { return nil }
        return (SnapshotMarker(index: LogIndex(i), term: Term(t), replacesLog: role == .install || role == .batchInstall, membership: m), role)
    }

    /// A batch header: the first entry's index, how many entries follow,
    /// and whether a snapshot marker comes before them.
    static func encodeBatch(first: LogIndex, count: Int, withSnapshot: Bool) -> [UInt8] {
        precondition(count > 0 && count <= Int(UInt32.max), "a batch of \(count) entries")
        var w = BinaryWriter()
        w.u64(first.rawValue)
        w.u32(UInt32(count))
        w.u8(withSnapshot ? 1 : 0)
        return w.bytes
    }

    static func decodeBatch(_ bytes: [UInt8]) -> (first: LogIndex, count: Int, withSnapshot: Bool)? {
        var r = BinaryReader(bytes)
        guard let first = r.u64(), let count = r.u32(), let flag = r.u8(), flag <= 1, r.atEnd, count > 0 else { return nil }
        return (LogIndex(first), Int(count), flag == 1)
    }

    static func seedValue(_ payload: [UInt8]) -> UInt32 {
        var r = BinaryReader(payload)
        return r.u32() ?? 0
    }
}
