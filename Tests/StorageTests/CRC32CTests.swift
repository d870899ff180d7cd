import Foundation
@testable import Storage
import Testing

/// The checksum every WAL record, snapshot and MVCC record carries: the
/// CPU's instruction and the table must agree byte for byte, or a member
/// would refuse its own files after moving to another machine.
struct CRC32CTests {
    /// RFC 3720's CRC-32C test vectors (iSCSI), and the customary check value.
    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([], seed: 0x1234_5678) == 0x1234_5678)
    }

    /// On a CPU that has the instruction, it is what runs (so the tests
    /// above checked it, not only the table).
    @Test func usesTheInstructionWhereTheCPUHasIt() throws {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") || $0.hasPrefix("Features") } ?? ""
        let words = Set(flags.split(separator: " ").map(String.init))
        if words.contains("sse4_2") || words.contains("crc32") {
            #expect(CRC32C.inHardware)
        }
    }

    /// Every length and alignment around the instruction's 8-byte steps,
    /// chained through seeds as the WAL chains its records.
    @Test func hardwareAndTableAgree() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var seed: UInt32 = 0
        bytes.withUnsafeBufferPointer { all in
            for offset in 0..<9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1000, 4096 - offset] {
                    let slice = UnsafeBufferPointer(rebasing: all[offset..<(offset + length)])
                    let table = CRC32C.software(slice, seed: seed)
                    #expect(CRC32C.checksum(slice, seed: seed) == table, "offset \(offset) length \(length)")
                    seed = table
                }
            }
        }
    }
}
