#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a bbolt database file (go.etcd.io/bbolt 1.3, etcd's backend): the
/// bucket names and each bucket's keys in order. It is how Ballot takes
/// over an etcd backup or an etcd member's `member/snap/db`.
///
/// Hand-written for the same reason as `BoltFileWriter`: no Swift library
/// reads bbolt. The file is mapped read-only and walked from the newer of
/// its two valid meta pages; every offset is checked against the file, so
/// a damaged or foreign file is refused with `.corrupt`, never read past.
public final class BoltFileReader {
    public let path: String
    private let base: UnsafeRawPointer
    private let size: Int
    public let pageSize: Int
    /// The root bucket's page: a leaf (or branch) naming every bucket.
    private let rootPage: UInt64
    /// B+tree depth beyond which a file is refused (bbolt's trees of a
    /// billion keys are a handful of levels deep; a cycle would be infinite).
    static let depthMax = 64

    public init(path: String) throws(StorageError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw .io(errno: errno, operation: "open", path: path) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw .io(errno: errno, operation: "fstat", path: path) }
        size = Int(st.st_size)
        guard size >= 2 * 1024 else { throw .corrupt(path: path, detail: "\(size) bytes is too small for a bbolt file") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw .io(errno: errno, operation: "mmap", path: path)
        }
        base = UnsafeRawPointer(mapped)
        // Meta page 0 says the page size; meta page 1 sits one page later.
        var metas: [(txid: UInt64, root: UInt64, pageSize: Int)] = []
        if let meta0 = Self.meta(base, size, at: 0) { metas.append(meta0) }
        let secondAt = metas.first?.pageSize ?? BoltFileWriter.pageSize
        if let meta1 = Self.meta(base, size, at: secondAt), meta1.pageSize == secondAt { metas.append(meta1) }
        guard let newest = metas.max(by: { $0.txid < $1.txid }) else {
            munmap(mapped, size)
            throw .corrupt(path: path, detail: "no valid bbolt meta page (not a bbolt file, or both meta pages are damaged)")
        }
        pageSize = newest.pageSize
        rootPage = newest.root
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    /// A meta page's root, transaction ID and page size, if its magic,
    /// version and FNV-1a checksum are right.
    private static func meta(_ base: UnsafeRawPointer, _ size: Int, at offset: Int) -> (txid: UInt64, root: UInt64, pageSize: Int)? {
        let metaAt = offset + BoltFileWriter.pageHeaderBytes
        guard metaAt + 64 <= size else { return nil }
        let bytes = Array(UnsafeRawBufferPointer(start: base + metaAt, count: 64))
        func u32(_ at: Int) -> UInt32 { bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) } }
        func u64(_ at: Int) -> UInt64 { bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
        guard u32(0) == BoltFileWriter.magic, u32(4) == BoltFileWriter.version,
              u64(56) == BoltFileWriter.fnv1a64(Array(bytes[0..<56])) else { return nil }
        let pageSize = Int(u32(8))
        guard pageSize >= 1024, pageSize <= 1 << 16, pageSize & (pageSize - 1) == 0 else { return nil }
        return (u64(48), u64(16), pageSize)
    }

    /// A node of a B+tree: a page of the file, or a bucket's inline page
    /// inside its parent's value. `bytes` is how far it may be read.
    private struct Node {
        var start: UnsafeRawPointer
        var bytes: Int
    }

    private func u16(_ node: Node, _ at: Int) -> UInt16 { UInt16(littleEndian: node.start.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    private func u32(_ node: Node, _ at: Int) -> UInt32 { UInt32(littleEndian: node.start.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    private func u64(_ node: Node, _ at: Int) -> UInt64 { UInt64(littleEndian: node.start.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

    private func page(_ id: UInt64) throws(StorageError) -> Node {
        let offset = id.multipliedReportingOverflow(by: UInt64(pageSize))
        guard !offset.overflow, id >= 2, offset.partialValue + UInt64(pageSize) <= UInt64(size) else {
            throw .corrupt(path: path, detail: "names page \(id), outside its \(size / pageSize) pages")
        }
        var node = Node(start: base + Int(offset.partialValue), bytes: pageSize)
        let overflow = Int(u32(node, 12))
        guard Int(offset.partialValue) + (overflow + 1) * pageSize <= size else {
            throw .corrupt(path: path, detail: "page \(id) runs \(overflow) pages past itself, beyond the file")
        }
        node.bytes = (overflow + 1) * pageSize
        return node
    }

    /// Bytes of `node` at `offset`, checked to lie within it.
    private func slice(_ node: Node, _ offset: Int, _ count: Int) throws(StorageError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= node.bytes, count <= node.bytes - offset else {
            throw .corrupt(path: path, detail: "an element of \(count) bytes at \(offset) runs past its page of \(node.bytes) bytes")
        }
        return Array(UnsafeRawBufferPointer(start: node.start + offset, count: count))
    }

    /// Visits every leaf element under `node` in key order: key, value, flags.
    private func walk(_ node: Node, depth: Int, _ visit: ([UInt8], [UInt8], UInt32) throws(StorageError) -> Void) throws(StorageError) {
        guard depth < Self.depthMax else { throw .corrupt(path: path, detail: "a B+tree deeper than \(Self.depthMax) levels (a cycle?)") }
        guard node.bytes >= BoltFileWriter.pageHeaderBytes else { throw .corrupt(path: path, detail: "an inline bucket shorter than a page header") }
        let flags = u16(node, 8)
        let count = Int(u16(node, 10))
        let elements = BoltFileWriter.pageHeaderBytes
        guard elements + count * BoltFileWriter.elementBytes <= node.bytes else {
            throw .corrupt(path: path, detail: "a page of \(count) elements overflows its \(node.bytes) bytes")
        }
        for i in 0..<count {
            let at = elements + i * BoltFileWriter.elementBytes
            if flags & BoltFileWriter.branchPageFlag != 0 {
                let pos = Int(u32(node, at)), keyBytes = Int(u32(node, at + 4))
                _ = try slice(node, at + pos, keyBytes)
                try walk(try page(u64(node, at + 8)), depth: depth + 1, visit)
            } else if flags & BoltFileWriter.leafPageFlag != 0 {
                let elementFlags = u32(node, at), pos = Int(u32(node, at + 4))
                let keyBytes = Int(u32(node, at + 8)), valueBytes = Int(u32(node, at + 12))
                let key = try slice(node, at + pos, keyBytes)
                let value = try slice(node, at + pos + keyBytes, valueBytes)
                try visit(key, value, elementFlags)
            } else {
                throw .corrupt(path: path, detail: "a tree page with flags \(flags), neither branch nor leaf")
            }
        }
    }

    /// The names of the top-level buckets, in order.
    public func bucketNames() throws(StorageError) -> [[UInt8]] {
        var names: [[UInt8]] = []
        try walk(try page(rootPage), depth: 0) { key, _, flags throws(StorageError) in
            if flags & BoltFileWriter.bucketLeafFlag != 0 { names.append(key) }
        }
        return names
    }

    /// Visits every key of the top-level bucket `name` in key order (nested
    /// buckets, which etcd never makes, are skipped); false if there is no
    /// such bucket.
    @discardableResult
    public func forEach(inBucket name: [UInt8], _ visit: ([UInt8], [UInt8]) throws(StorageError) -> Void) throws(StorageError) -> Bool {
        var header: [UInt8]?
        try walk(try page(rootPage), depth: 0) { key, value, flags throws(StorageError) in
            if key == name && flags & BoltFileWriter.bucketLeafFlag != 0 { header = value }
        }
        guard let header else { return false }
        guard header.count >= BoltFileWriter.bucketHeaderBytes else { throw .corrupt(path: path, detail: "bucket header of \(header.count) bytes") }
        let root = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        if root != 0 {
            try walk(try page(root), depth: 1) { key, value, flags throws(StorageError) in
                if flags & BoltFileWriter.bucketLeafFlag == 0 { try visit(key, value) }
            }
            return true
        }
        // An inline bucket: its one page follows the header in the value.
        var failure: StorageError?
        header.withUnsafeBytes { raw in
            let inline = Node(start: raw.baseAddress! + BoltFileWriter.bucketHeaderBytes, bytes: raw.count - BoltFileWriter.bucketHeaderBytes)
            do throws(StorageError) {
                try walk(inline, depth: 1) { key, value, flags throws(StorageError) in
                    if flags & BoltFileWriter.bucketLeafFlag == 0 { try visit(key, value) }
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return true
    }
}
