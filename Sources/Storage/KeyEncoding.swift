/// Byte layouts of the MVCC databases. Composite keys sort by user key,
/// then by revision, so one cursor walk visits each key's versions in order.
enum KeyEncoding {
    /// A user key escaped so that it sorts correctly as a prefix: every 0x00
    /// becomes 0x00 0xFF, and 0x00 0x00 ends it. "a" < "a\0" < "ab" holds
    /// for the escaped forms too.
    static func escape(_ key: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(key.count + 18)
        for byte in key {
            out.append(byte)
            if byte == 0 { out.append(0xFF) }
        }
        out.append(0)
        out.append(0)
        return out
    }

    /// The user key and the revision of a composite key.
    static func split(_ composite: [UInt8]) -> (key: [UInt8], main: Int64, sub: Int64)? {
        var key: [UInt8] = []
        var i = 0
        while i + 1 < composite.count {
            if composite[i] == 0 {
                if composite[i + 1] == 0 { break }
                guard composite[i + 1] == 0xFF else { return nil }
                key.append(0)
                i += 2
            } else {
                key.append(composite[i])
                i += 1
            }
        }
        guard i + 2 + 16 == composite.count else { return nil }
        return (key, int64(composite, at: i + 2), int64(composite, at: i + 10))
    }

    static func composite(_ key: [UInt8], main: Int64, sub: Int64) -> [UInt8] {
        escape(key) + bigEndian(main) + bigEndian(sub)
    }

    static func revisionKey(main: Int64, sub: Int64) -> [UInt8] { bigEndian(main) + bigEndian(sub) }

    static func bigEndian(_ value: Int64) -> [UInt8] {
        let v = UInt64(bitPattern: value)
        return (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) }
    }

    static func int64(_ bytes: [UInt8], at offset: Int) -> Int64 {
        precondition(offset + 8 <= bytes.count, "short integer at \(offset)")
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        return Int64(bitPattern: v)
    }

    /// A version record: CRC-32C, tombstone flag, create revision, version,
    /// lease, value. LMDB checks no page contents, so the checksum (over the
    /// composite key and the rest of the record) is what turns a flipped
    /// bit on disk into a refusal instead of a wrong answer.
    static func record(key composite: [UInt8], tombstone: Bool, createRevision: Int64, version: Int64, lease: Int64, value: [UInt8]) -> [UInt8] {
        let body = [tombstone ? 1 : 0] + bigEndian(createRevision) + bigEndian(version) + bigEndian(lease) + value
        let crc = CRC32C.checksum(body, seed: CRC32C.checksum(composite))
        return (0..<4).map { UInt8(truncatingIfNeeded: crc >> (24 - 8 * $0)) } + body
    }

    struct Record {
        var tombstone: Bool
        var createRevision: Int64
        var version: Int64
        var lease: Int64
        var value: [UInt8]
    }

    static func decodeRecord(_ bytes: [UInt8], key composite: [UInt8]) -> Record? {
        guard bytes.count >= 29, bytes[4] <= 1 else { return nil }
        let stored = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let body = Array(bytes[4...])
        guard CRC32C.checksum(body, seed: CRC32C.checksum(composite)) == stored else { return nil }
        return Record(
            tombstone: body[0] == 1, createRevision: int64(body, at: 1), version: int64(body, at: 9),
            lease: int64(body, at: 17), value: Array(body[25...]))
    }
}
