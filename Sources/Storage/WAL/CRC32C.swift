import CCRC32C

/// CRC-32C (Castagnoli), the checksum etcd's WAL and iSCSI use: better
/// error detection than CRC-32 for the same cost. The CPU's instruction
/// where it has one (`CCRC32C`), a table otherwise; both give the same sums
/// (`CRC32CTests`).
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// Whether `checksum` uses the CPU's instruction.
    static let inHardware = ballot_crc32c_hardware_available()

    /// The checksum of `bytes`, continuing from `seed` (the previous
    /// checksum, so a chain of records verifies as a whole).
    static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0, seed: seed) }
    }

    static func checksum(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0, seed: seed) }
    }

    static func checksum(_ b: UnsafeBufferPointer<UInt8>, seed: UInt32) -> UInt32 {
        guard inHardware else { return software(b, seed: seed) }
        guard let base = b.baseAddress else { return seed }
        return ~ballot_crc32c_update(~seed, base, b.count)
    }

    /// The table-driven sum: for CPUs without the instruction, and the
    /// reference the hardware sum is tested against.
    static func software(_ b: UnsafeBufferPointer<UInt8>, seed: UInt32) -> UInt32 {
        // Unsafe buffers: this loop runs over every byte the WAL writes or reads.
        table.withUnsafeBufferPointer { t in
            var crc = ~seed
            for byte in b { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            return ~crc
        }
    }
}
