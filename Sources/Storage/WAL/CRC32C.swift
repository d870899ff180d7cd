/// CRC-32C (Castagnoli), the checksum etcd's WAL and iSCSI use: better
/// error detection than CRC-32 for the same cost. Table-driven.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The checksum of `bytes`, continuing from `seed` (the previous
    /// checksum, so a chain of records verifies as a whole).
    static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0, seed: seed) }
    }

    static func checksum(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0, seed: seed) }
    }

    static func checksum(_ b: UnsafeBufferPointer<UInt8>, seed: UInt32) -> UInt32 {
        // Unsafe buffers: this loop runs over every byte the WAL writes or reads.
        table.withUnsafeBufferPointer { t in
            var crc = ~seed
            for byte in b { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            return ~crc
        }
    }
}
