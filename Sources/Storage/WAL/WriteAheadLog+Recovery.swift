import Consensus
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WriteAheadLog {
    /// Read every segment, verify it, and rebuild what the log holds.
    /// Returns the recovery, the CRC chain value and the newest segment's
    /// end of data.
    static func recover(_ segments: [Segment], settings: WALSettings) throws(StorageError) -> (WALRecovery, UInt32, Int) {
        var recovery = WALRecovery()
        var base = LogIndex.zero  // entries hold base+1 ...
        var chain: UInt32 = 0
        var endOffset = 0
        // Released segments leave the log starting mid-way: its first entry
        // sets the base, and a snapshot marker must later cover that base.
        var releasedThrough: LogIndex?
        let startsMidLog = segments.first.map { $0.sequence > 0 } ?? false
        // The append whose entries are still arriving, and the last one a
        // crash left incomplete (its entries are dropped: none was synced).
        var batch: OpenBatch?
        var discarded: String?
        // 1 right after a segment's seed, whose hard state (and snapshot
        // reminder, flagged as one) a rotation may write in the middle of a
        // batch. Any other record met while a batch is open means the batch
        // was torn and the member wrote on after its restart.
        var headerStep = 0
        // The record before this one was a batch header: only there does a
        // batch's own snapshot marker stand.
        var afterBatchHeader = false
        func dropTornBatch() {
            if let torn = batch { discarded = torn.description }
            batch = nil
        }
        func take(_ entry: Entry, _ path: String, _ offset: Int) throws(StorageError) {
            // The first entry of a log whose first segments were
            // released: what came before it went with them. A
            // marker may precede it (each segment repeats the latest
            // at its start) yet cover less than was released, when
            // a later compaction released more; that later marker
            // must then follow, or the check after the loop refuses.
            if startsMidLog && releasedThrough == nil && recovery.entries.isEmpty
                && (recovery.snapshot == nil || entry.index > base + 1) {
                base = entry.index - 1
                releasedThrough = base
            }
            let last = base + UInt64(recovery.entries.count)
            if entry.index <= base {
                // Covered by the snapshot already.
            } else if entry.index > last + 1 {
                throw .corrupt(path: path, detail: "entry \(entry.index) at byte offset \(offset) leaves a gap after \(last)")
            } else {
                // A later leader's entry supersedes ours from its index on.
                recovery.entries.removeSubrange(Int(entry.index.rawValue - base.rawValue - 1)...)
                recovery.entries.append(entry)
            }
        }
        func take(_ marker: SnapshotMarker) {
            if marker.replacesLog {
                recovery.entries = []
            } else {
                let drop = min(recovery.entries.count, Int(marker.index.rawValue) - Int(base.rawValue))
                if drop > 0 { recovery.entries.removeFirst(drop) }
            }
            if marker.index >= base {
                base = marker.index
                recovery.snapshot = marker
            }
        }
        for (number, segment) in segments.enumerated() {
            let isNewest = number == segments.count - 1
            let bytes = try readFile(segment.path)
            var offset = 0
            var first = true
            while true {
                if offset + headerBytes > bytes.count {
                    if allZero(bytes, from: offset) { break }  // unused preallocated slack
                    throw .corrupt(path: segment.path, detail: "record header cut short at byte offset \(offset)")
                }
                var header = BinaryReader(Array(bytes[offset..<(offset + headerBytes)]))
                let length = Int(header.u32()!)
                let typeByte = header.u8()!
                let stored = header.u32()!
                if length == 0 && typeByte == 0 && stored == 0 {
                    // Preallocated space: the end of the data. Nothing may follow.
                    if !allZero(bytes, from: offset) {
                        throw .corrupt(path: segment.path, detail: "data after the end marker at byte offset \(offset)")
                    }
                    break
                }
                let end = offset + headerBytes + length
                let payload = end <= bytes.count && length <= WALSettings.recordBytesMax
                    ? Array(bytes[(offset + headerBytes)..<end]) : nil
                let type = RecordType(rawValue: typeByte)
                var crc = CRC32C.checksum([typeByte], seed: type == .seed ? 0 : chain)
                if let payload { crc = CRC32C.checksum(payload, seed: crc) }
                guard let payload, let type, crc == stored else {
                    // A torn write can only be the last thing in the newest
                    // segment, and fits inside it (segments are preallocated
                    // and records never cross them): a record claiming to run
                    // past the file is damage, not a torn write.
                    if isNewest && end <= bytes.count && allZero(bytes, from: end) {
                        try cutTornTail(segment.path, from: offset, to: end, fileBytes: bytes.count, size: settings.segmentBytes)
                        recovery.truncatedTail = "\(segment.path) at byte offset \(offset)"
                        break
                    }
                    throw .corrupt(path: segment.path, detail: "checksum mismatch in the record at byte offset \(offset)")
                }
                if first {
                    guard type == .seed else {
                        throw .corrupt(path: segment.path, detail: "segment does not start with its seed record")
                    }
                    if number > 0 && seedValue(payload) != chain {
                        throw .corrupt(path: segment.path, detail: "seed does not continue the previous segment: a segment was replaced or lost")
                    }
                    first = false
                }
                let followsBatchHeader = afterBatchHeader
                afterBatchHeader = type == .batch
                switch type {
                case .seed:
                    chain = seedValue(payload)
                    headerStep = 1
                    offset = end
                    continue
                case .hardState:
                    guard let hs = ConsensusCodec.decodeHardState(payload) else {
                        throw .corrupt(path: segment.path, detail: "undecodable hard state at byte offset \(offset)")
                    }
                    // An append's hard state follows its whole batch.
                    if headerStep == 1 { headerStep = 0 } else { dropTornBatch() }
                    recovery.hardState = hs
                case .batch:
                    guard let (firstIndex, count, withSnapshot) = decodeBatch(payload) else {
                        throw .corrupt(path: segment.path, detail: "undecodable batch header at byte offset \(offset)")
                    }
                    // A batch left incomplete was torn by a crash, and the
                    // log was written on after it when the member restarted.
                    dropTornBatch()
                    headerStep = 0
                    batch = OpenBatch(first: firstIndex, count: count, withSnapshot: withSnapshot, at: "\(segment.path) at byte offset \(offset)")
                case .entry:
                    guard let entry = ConsensusCodec.decodeEntry(payload) else {
                        throw .corrupt(path: segment.path, detail: "undecodable entry at byte offset \(offset)")
                    }
                    headerStep = 0
                    if var open = batch {
                        guard entry.index == open.first + UInt64(open.entries.count), open.marker != nil || !open.withSnapshot else {
                            throw .corrupt(path: segment.path, detail: "entry \(entry.index) at byte offset \(offset) breaks the batch from \(open.first)")
                        }
                        open.entries.append(entry)
                        if open.entries.count == open.count {
                            batch = nil
                            if let marker = open.marker { take(marker) }
                            for member in open.entries { try take(member, segment.path, offset) }
                            for reminder in open.reminders { take(reminder) }
                        } else {
                            batch = open
                        }
                    } else {
                        // Logs written before batch headers existed.
                        try take(entry, segment.path, offset)
                    }
                case .snapshot:
                    guard let (marker, role) = decodeSnapshotRecord(payload) else {
                        throw .corrupt(path: segment.path, detail: "undecodable snapshot marker at byte offset \(offset)")
                    }
                    headerStep = 0
                    if var open = batch, role == .reminder {
                        // A new segment's reminder, met part-way through
                        // the batch: it stands or falls with the batch.
                        open.reminders.append(marker)
                        batch = open
                    } else if var open = batch, role == .batchInstall, followsBatchHeader, open.withSnapshot, open.marker == nil {
                        open.marker = marker
                        batch = open
                    } else {
                        // A marker of its own (a compaction, an install
                        // without entries) after a torn batch.
                        dropTornBatch()
                        take(marker)
                    }
                }
                chain = crc
                offset = end
            }
            if isNewest { endOffset = offset }
        }
        if let torn = batch { discarded = torn.description }
        if let discarded {
            recovery.truncatedTail = [recovery.truncatedTail, "an incomplete append (\(discarded)) dropped"]
                .compactMap { $0 }.joined(separator: "; ")
        }
        if let released = releasedThrough, (recovery.snapshot?.index ?? .zero) < released {
            throw .corrupt(path: segments.first!.path,
                           detail: "entries through \(released) were released but no snapshot covers them: segments were lost")
        }
        let last = base + UInt64(recovery.entries.count)
        if recovery.hardState.commit > last {
            throw .corrupt(path: segments.last!.path, detail: "hard state commits \(recovery.hardState.commit) but the log ends at \(last)")
        }
        return (recovery, chain, endOffset)
    }

    static func allZero(_ bytes: [UInt8], from offset: Int) -> Bool {
        var i = offset
        while i < bytes.count {
            if bytes[i] != 0 { return false }
            i += 1
        }
        return true
    }

    static func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: path) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw .io(errno: errno, operation: "fstat", path: path) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(errno: errno, operation: "pread", path: path)
            }
            if n == 0 { break }
            done += n
        }
        return bytes
    }

    /// Cut a torn tail durably: zero the torn record `[start, end)` (all
    /// after it is already zero) and restore the segment's full size.
    /// Zeros, not a hole: the tail stays written, as a fresh segment's is.
    static func cutTornTail(_ path: String, from start: Int, to end: Int, fileBytes: Int, size: Int) throws(StorageError) {
        let fd = Glibc.open(path, O_WRONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: path) }
        defer { close(fd) }
        try zeroFill(fd, from: start, to: min(end, fileBytes), path: path)
        if fileBytes < size { try zeroFill(fd, from: fileBytes, to: size, path: path) }
        if fsync(fd) != 0 { throw .io(errno: errno, operation: "fsync", path: path) }
    }
}

/// An append's entries as recovery reads them: kept only once all arrived.
private struct OpenBatch {
    var first: LogIndex
    var count: Int
    /// A snapshot marker from the leader comes first: it replaces the log,
    /// and the entries are the acceptances kept after it.
    var withSnapshot: Bool
    var marker: SnapshotMarker?
    /// Snapshot reminders of segments that began inside the batch.
    var reminders: [SnapshotMarker] = []
    var at: String
    var entries: [Entry] = []

    var description: String { "\(count) entries from \(first), \(at)" }
}
