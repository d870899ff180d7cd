import Crypto

/// Byte layouts of the MVCC databases. Composite keys sort by user key,
/// then by revision, so one cursor walk visits each key's versions in order.
///
/// A composite key is the user key's *slot* followed by the revision (16
/// bytes). LMDB refuses keys over 511 bytes, while etcd takes keys up to
/// the request limit, so a slot has two forms:
///
/// - short: the escaped key (see `escape`), when it is at most
///   `shortSlotBytesMax` bytes. It sorts exactly as the user key does.
/// - long: the first `shortSlotBytesMax - 1` escaped bytes (one more if
///   the cut would split an escaped zero), the marker 0x00 0x01, and the
///   key's SHA-256. Its record carries the whole key.
///
/// Every long slot sorts where its key does relative to every short slot:
/// a short slot's end marker 0x00 0x00 starts before the cut, and an
/// escaped key holds 0x00 0x00 nowhere but at its end, so a short and a
/// long slot always differ within the cut, where escaped order is key
/// order. Two cuts of different lengths differ within the shorter (the
/// longer exists only because its last byte is 0xFF after 0x00). Long keys
/// that share their cut form one contiguous *group*, ordered by hash;
/// readers sort a group by key in memory.
enum KeyEncoding {
    /// LMDB's compiled-in key limit (MDB_MAXKEYSIZE in Debian's liblmdb).
    static let lmdbKeyBytesMax = 511
    static let revisionBytes = 16
    static let hashBytes = SHA256.byteCount
    static let longMarker: [UInt8] = [0x00, 0x01]
    /// The longest short slot (end marker included); a long slot's cut is
    /// one byte shorter, or as long. A long slot of at most this many bytes,
    /// the marker and the hash, plus the revision, fits LMDB's limit.
    static let shortSlotBytesMax = lmdbKeyBytesMax - revisionBytes - hashBytes - longMarker.count - 1

    /// A user key escaped so that it sorts correctly as a prefix: every 0x00
    /// becomes 0x00 0xFF, and 0x00 0x00 ends it. "a" < "a\0" < "ab" holds
    /// for the escaped forms too.
    static func escape(_ key: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(key.count + 18)
        key.withUnsafeBufferPointer { bytes in
            for byte in bytes {
                out.append(byte)
                if byte == 0 { out.append(0xFF) }
            }
        }
        out.append(0)
        out.append(0)
        return out
    }

    /// The slot of `key`: where its versions live in the `keys` database.
    static func slot(_ key: [UInt8]) -> [UInt8] {
        var escaped = escape(key)
        if !isLong(key) { return escaped }
        // The cut holds key bytes only, never the end marker, and never
        // half of an escaped zero.
        escaped.removeLast(2)
        var cut = shortSlotBytesMax - 1
        if escaped[cut - 1] == 0 { cut += 1 }
        escaped.removeSubrange(cut...)
        let slot = escaped + longMarker + Array(SHA256.hash(data: key))
        assert(slot.count + revisionBytes <= lmdbKeyBytesMax, "long slot of \(slot.count) bytes")
        return slot
    }

    /// Whether `key` takes a long slot: its escaped form is too long.
    static func isLong(_ key: [UInt8]) -> Bool {
        if 2 * key.count + 2 <= shortSlotBytesMax { return false }
        if key.count + 2 > shortSlotBytesMax { return true }
        var zeros = 0
        key.withUnsafeBufferPointer { bytes in
            for byte in bytes where byte == 0 { zeros += 1 }
        }
        return key.count + zeros + 2 > shortSlotBytesMax
    }

    /// Where a range starting at `key` begins its walk: the key's slot, or
    /// for a long key the start of its group, which readers sort in memory.
    static func rangeStart(_ key: [UInt8]) -> [UInt8] {
        let slot = slot(key)
        return isLong(key) ? Array(slot.dropLast(hashBytes)) : slot
    }

    /// What a slot says of its key.
    enum SlotKind: Equatable {
        /// The key itself, decoded from the slot.
        case short(key: [UInt8])
        /// A long key: the slot's first `groupBytes` bytes (the cut prefix
        /// and the marker) are shared by its group; its record holds the key.
        case long(groupBytes: Int)
    }

    /// A composite key taken apart.
    struct Version {
        var slot: ArraySlice<UInt8>
        var kind: SlotKind
        var main: Int64
        var sub: Int64
    }

    /// The slot, its kind and the revision of a composite key; nil if the
    /// bytes are not one this encoding writes.
    static func parse(_ composite: [UInt8]) -> Version? {
        guard composite.count > revisionBytes else { return nil }
        let end = composite.count - revisionBytes
        var key: [UInt8] = []
        var i = 0
        while i + 1 < end {
            guard composite[i] == 0 else {
                key.append(composite[i])
                i += 1
                continue
            }
            switch composite[i + 1] {
            case 0xFF:
                key.append(0)
                i += 2
            case 0x00:
                guard i + 2 == end else { return nil }
                return Version(slot: composite[..<end], kind: .short(key: key), main: int64(composite, at: end), sub: int64(composite, at: end + 8))
            case 0x01:
                guard i + 2 + hashBytes == end, i >= shortSlotBytesMax - 1, i <= shortSlotBytesMax else { return nil }
                return Version(slot: composite[..<end], kind: .long(groupBytes: i + 2), main: int64(composite, at: end), sub: int64(composite, at: end + 8))
            default:
                return nil
            }
        }
        return nil
    }

    static func composite(_ key: [UInt8], main: Int64, sub: Int64) -> [UInt8] {
        slot(key) + revision(main: main, sub: sub)
    }

    static func composite(slot: some Collection<UInt8>, main: Int64, sub: Int64) -> [UInt8] {
        Array(slot) + revision(main: main, sub: sub)
    }

    /// A revision's bytes: a composite key's suffix, and the key of the `revisions` database.
    static func revision(main: Int64, sub: Int64) -> [UInt8] { bigEndian(main) + bigEndian(sub) }

    /// Where a group of long keys ends: the first position past every slot
    /// that starts with `group` (its cut prefix and marker 0x00 0x01).
    static func pastGroup(_ group: ArraySlice<UInt8>) -> [UInt8] {
        precondition(group.suffix(2).elementsEqual(longMarker), "not a group prefix")
        var past = Array(group)
        past[past.count - 1] = 0x02
        return past
    }

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

    /// A version record: CRC-32C, tombstone flag, create revision, version,
    /// lease, then (long slots only) the key's length and the key, then the
    /// value. LMDB checks no page contents, so the checksum (over the
    /// composite key and the rest of the record) is what turns a flipped
    /// bit on disk into a refusal instead of a wrong answer.
    static func record(
        key: [UInt8], composite: [UInt8], tombstone: Bool, createRevision: Int64, version: Int64, lease: Int64, value: [UInt8]
    ) -> [UInt8] {
        var body = [tombstone ? 1 : 0] + bigEndian(createRevision) + bigEndian(version) + bigEndian(lease)
        if isLong(key) {
            assert(composite.count == slot(key).count + revisionBytes, "a long key's record under another slot")
            body += bigEndian(Int64(key.count)) + key
        }
        body += value
        let crc = CRC32C.checksum(body, seed: CRC32C.checksum(composite))
        return (0..<4).map { UInt8(truncatingIfNeeded: crc >> (24 - 8 * $0)) } + body
    }

    /// One stored version, decoded and checked.
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
        var slot: ArraySlice<UInt8>
        var kind: SlotKind

        var keyValue: KeyValue {
            KeyValue(key: key, value: value, createRevision: createRevision, modRevision: modRevision, version: version, lease: lease)
        }
    }

    /// The version a `keys` entry holds; nil if its key or record is not
    /// one this encoding wrote, or fails its checksum.
    static func decode(composite: [UInt8], record bytes: [UInt8]) -> Record? {
        guard let version = parse(composite), bytes.count >= 29, bytes[4] <= 1 else { return nil }
        let stored = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let body = bytes[4...]
        guard CRC32C.checksum(body, seed: CRC32C.checksum(composite)) == stored else { return nil }
        var valueStart = body.startIndex + 25
        let key: [UInt8]
        switch version.kind {
        case .short(let short):
            key = short
        case .long:
            guard body.count >= 33 else { return nil }
            let length = int64(body, at: 25)
            guard length >= 0, length <= body.count - 33 else { return nil }
            key = Array(body[(valueStart + 8)..<(valueStart + 8 + Int(length))])
            guard slot(key)[...] == version.slot else { return nil }
            valueStart += 8 + Int(length)
        }
        return Record(
            key: key, tombstone: body[body.startIndex] == 1, createRevision: int64(body, at: 1), modRevision: version.main,
            sub: version.sub, version: int64(body, at: 9), lease: int64(body, at: 17), value: Array(body[valueStart...]), slot: version.slot,
            kind: version.kind)
    }
}
