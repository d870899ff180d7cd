import Foundation
import Storage
import Testing

/// The bbolt reader against the bbolt writer: every bucket shape the
/// writer makes (empty and inline, one leaf, branch levels, values longer
/// than a page) reads back whole and in order; damaged files are refused.
@Suite struct BoltFileTests {
    static func temporaryPath() -> String { NSTemporaryDirectory() + "bolt-\(UUID().uuidString).db" }

    static func write(_ path: String, _ buckets: [(String, [([UInt8], [UInt8])])]) throws {
        let writer = try BoltFileWriter(path: path)
        for (name, pairs) in buckets {
            writer.beginBucket(Array(name.utf8))
            for (key, value) in pairs { try writer.put(key, value) }
            try writer.endBucket()
        }
        try writer.finish()
    }

    static func read(_ path: String, _ name: String) throws -> [([UInt8], [UInt8])]? {
        let reader = try BoltFileReader(path: path)
        var pairs: [([UInt8], [UInt8])] = []
        let found = try reader.forEach(inBucket: Array(name.utf8)) { key, value in pairs.append((key, value)) }
        return found ? pairs : nil
    }

    @Test func everyBucketShapeReadsBackInOrder() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        // 40,000 keys: three levels; every 997th value spans overflow pages.
        var many: [([UInt8], [UInt8])] = []
        for i in 0..<40_000 {
            let key = Array(String(format: "key/%08d", i).utf8)
            let valueBytes = i % 997 == 0 ? 9_000 : i % 40
            many.append((key, [UInt8](repeating: UInt8(i % 251), count: valueBytes)))
        }
        let one: [([UInt8], [UInt8])] = [([0], []), ([0, 0], [1]), ([255], Array(repeating: 7, count: 3000))]
        try Self.write(path, [("many", many), ("empty", []), ("one", one)])

        let reader = try BoltFileReader(path: path)
        #expect(try reader.bucketNames() == ["empty", "many", "one"].map { Array($0.utf8) })
        let readMany = try #require(try Self.read(path, "many"))
        #expect(readMany.count == many.count)
        #expect(readMany.elementsEqual(many) { $0.0 == $1.0 && $0.1 == $1.1 })
        let readOne = try #require(try Self.read(path, "one"))
        #expect(readOne.elementsEqual(one) { $0.0 == $1.0 && $0.1 == $1.1 })
        #expect(try Self.read(path, "empty")?.isEmpty == true)
        #expect(try Self.read(path, "absent") == nil)
    }

    @Test func damagedFilesAreRefusedNotReadPast() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let pairs: [([UInt8], [UInt8])] = (0..<2_000).map { (Array(String(format: "k%06d", $0).utf8), Array(repeating: 1, count: 100)) }
        try Self.write(path, [("key", pairs)])
        let good = try Data(contentsOf: URL(fileURLWithPath: path))

        // Both meta pages damaged: not a bbolt file any more.
        var noMeta = good
        noMeta[16] ^= 0xff
        noMeta[4096 + 16] ^= 0xff
        try noMeta.write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { try BoltFileReader(path: path) }

        // One meta page damaged: the other one still reads.
        var oneMeta = good
        oneMeta[16] ^= 0xff
        try oneMeta.write(to: URL(fileURLWithPath: path))
        #expect(try Self.read(path, "key")?.count == pairs.count)

        // Cut short: the tree names pages past the end.
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { _ = try Self.read(path, "key") }

        // Garbage over the data pages: element offsets out of bounds are refused.
        var garbage = good
        for i in (3 * 4096)..<garbage.count where i % 7 == 0 { garbage[i] = 0xff }
        try garbage.write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { _ = try Self.read(path, "key") }
    }
}
