/// Byte layouts of the MVCC databases.
///
/// The `revisions` database maps a revision (main then sub, 16 bytes big
/// endian, so LMDB's byte order is revision order) to the version that
/// revision wrote: its whole record, key included. Commits append there,
/// and the event feed, exports and compaction read it in order; which
/// revisions hold a key is the in-memory `KeyIndex`'s business, rebuilt
/// from these records at open. Keys of any length fit: a key is part of a
/// record (LMDB's 511-byte limit is on database keys, which are revisions).
enum KeyEncoding {
    static let revisionBytes = 16

    /// A revision's bytes: the key of the `revisions` database.
    static func revision(main: Int64, sub: Int64) -> [UInt8] { bigEndian(main) + bigEndian(sub) }

    static func bigEndian(_ value: Int64) -> [UInt8] {
        let v = UInt64(bitPattern: value)
        return (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) }
    }

    static func int64(_ bytes: some Collection<UInt8>, at offset: Int) -> Int64 {
        precondition(offset + 8 <= bytes.count, "short integer at \(offset)")
        var v: UInt64 = 0
        var i = bytes.index(bytes.startIndex, offsetBy: offset)
        for _ in 0..<8 {
            v = v << 8 | UInt64(bytes[i])
            i = bytes.index(after: i)
        }
        return Int64(bitPattern: v)
    }

    /// The fixed part of a record: CRC-32C (4), tombstone flag (1), create
    /// revision, version and lease (8 each), the key's length (8).
    static let recordHeaderBytes = 4 + 1 + 24 + 8

    /// A version record: the fixed part, then the key, then the value.
    /// LMDB checks no page contents, so the checksum (over the revision and
    /// the rest of the record) is what turns a flipped bit on disk into a
    /// refusal instead of a wrong answer.
    static func record(
        key: [UInt8], revision: [UInt8], tombstone: Bool, createRevision: Int64, version: Int64, lease: Int64, value: [UInt8]
    ) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(recordHeaderBytes + key.count + value.count)
        body.append(tombstone ? 1 : 0)
        body += bigEndian(createRevision)
        body += bigEndian(version)
        body += bigEndian(lease)
        body += bigEndian(Int64(key.count))
        body += key
        body += value
        let crc = CRC32C.checksum(body, seed: CRC32C.checksum(revision))
        return [UInt8(truncatingIfNeeded: crc >> 24), UInt8(truncatingIfNeeded: crc >> 16),
                UInt8(truncatingIfNeeded: crc >> 8), UInt8(truncatingIfNeeded: crc)] + body
    }

    /// One stored version, decoded.
    struct Record {
        var key: [UInt8]
        var tombstone: Bool
        var createRevision: Int64
        var modRevision: Int64
        /// The operation's place within its revision.
        var sub: Int64
        var version: Int64
        var lease: Int64
        var value: [UInt8]

        var keyValue: KeyValue {
            KeyValue(key: key, value: value, createRevision: createRevision, modRevision: modRevision, version: version, lease: lease)
        }
    }

    /// The version a `revisions` entry holds; nil if its key or record is
    /// not one this encoding wrote, or (when `checked`) fails its checksum.
    /// Unchecked decoding only reads where a record's key is: rebuilding the
    /// key index when `MVCCSettings.verifyOnOpen` is off, and compaction's
    /// walk over records it deletes or keeps unread.
    static func decode(revision: [UInt8], record bytes: [UInt8], checked: Bool = true) -> Record? {
        guard revision.count == revisionBytes, bytes.count >= recordHeaderBytes, bytes[4] <= 1 else { return nil }
        let keyLength = int64(bytes, at: 29)
        guard keyLength >= 0, keyLength <= bytes.count - recordHeaderBytes else { return nil }
        if checked {
            let stored = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
            guard CRC32C.checksum(bytes[4...], seed: CRC32C.checksum(revision)) == stored else { return nil }
        }
        let keyEnd = recordHeaderBytes + Int(keyLength)
        return Record(
            key: Array(bytes[recordHeaderBytes..<keyEnd]), tombstone: bytes[4] == 1, createRevision: int64(bytes, at: 5),
            modRevision: int64(revision, at: 0), sub: int64(revision, at: 8), version: int64(bytes, at: 13),
            lease: int64(bytes, at: 21), value: Array(bytes[keyEnd...]))
    }
}
