#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a bbolt database file (the format of etcd's backend, go.etcd.io/bbolt
/// 1.3) in one pass, so that etcd's tools read Ballot's snapshots:
/// `etcdctl snapshot status` and `snapshot restore`, and bbolt itself.
///
/// Hand-written because it is the product's own interchange format and no
/// Swift library writes bbolt. The file is what a freshly compacted bbolt
/// database looks like: meta pages 0 and 1, an empty freelist on page 2,
/// then each bucket's B+tree built bottom-up (leaves in key order, then
/// branch levels), then the root bucket's leaf, which names every bucket.
/// Every page is reachable or the freelist's, as `bbolt check` demands.
///
/// Use: `beginBucket`, `put` keys in ascending byte order, `endBucket`;
/// buckets in any order; then `finish`. Memory is one page plus one
/// branch entry per page written, whatever the database's size.
public final class BoltFileWriter {
    public static let pageSize = 4096
    /// bbolt's page flags.
    static let branchPageFlag: UInt16 = 0x01
    static let leafPageFlag: UInt16 = 0x02
    static let metaPageFlag: UInt16 = 0x04
    static let freelistPageFlag: UInt16 = 0x10
    /// A leaf element that is a sub-bucket.
    static let bucketLeafFlag: UInt32 = 0x01
    static let magic: UInt32 = 0xED0C_DAED
    static let version: UInt32 = 2
    static let pageHeaderBytes = 16
    static let elementBytes = 16
    static let bucketHeaderBytes = 16
    static let freelistPage: UInt64 = 2
    /// bbolt's largest key.
    public static let keyBytesMax = 32_768

    let path: String
    private let fd: Int32
    private var nextPage: UInt64 = 3
    /// Buckets finished: name, root page (0 for an empty, inline bucket).
    private var buckets: [(name: [UInt8], root: UInt64)] = []

    // The bucket being written.
    private var bucketName: [UInt8]?
    private var leaf: [(key: [UInt8], value: [UInt8])] = []
    private var leafBytes = pageHeaderBytes
    private var lastKey: [UInt8]?
    /// Each page of the level below, by its first key.
    private var written: [(firstKey: [UInt8], page: UInt64)] = []
    public private(set) var bytesWritten = 0

    /// Creates (or truncates) `path`.
    public init(path: String) throws(StorageError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if fd < 0 { throw .io(errno: errno, operation: "create", path: path) }
    }

    deinit { close(fd) }

    public func beginBucket(_ name: [UInt8]) {
        precondition(bucketName == nil, "one bucket at a time")
        precondition(!name.isEmpty && !buckets.contains { $0.name == name }, "bucket names are unique and not empty")
        bucketName = name
        leaf = []
        leafBytes = Self.pageHeaderBytes
        lastKey = nil
        written = []
    }

    /// Adds a key to the open bucket; keys come in strictly ascending order.
    public func put(_ key: [UInt8], _ value: [UInt8]) throws(StorageError) {
        precondition(bucketName != nil, "put outside a bucket")
        precondition(!key.isEmpty && key.count <= Self.keyBytesMax, "bbolt keys are 1 to 32768 bytes")
        if let lastKey { precondition(lastKey.lexicographicallyPrecedes(key), "keys must come in ascending order") }
        lastKey = key
        let bytes = Self.elementBytes + key.count + value.count
        if !leaf.isEmpty && leafBytes + bytes > Self.pageSize { try flushLeaf() }
        leaf.append((key, value))
        leafBytes += bytes
    }

    public func endBucket() throws(StorageError) {
        guard let name = bucketName else { preconditionFailure("endBucket without beginBucket") }
        if written.isEmpty && leaf.isEmpty {
            buckets.append((name, 0))  // empty: written inline in the root leaf, as bbolt does
        } else {
            if !leaf.isEmpty { try flushLeaf() }
            // Branch levels until one page holds the level.
            while written.count > 1 {
                let level = written
                written = []
                var page: [(key: [UInt8], child: UInt64)] = []
                var bytes = Self.pageHeaderBytes
                for entry in level {
                    let size = Self.elementBytes + entry.firstKey.count
                    if !page.isEmpty && bytes + size > Self.pageSize {
                        try writeBranch(page)
                        page = []
                        bytes = Self.pageHeaderBytes
                    }
                    page.append((entry.firstKey, entry.page))
                    bytes += size
                }
                try writeBranch(page)
            }
            buckets.append((name, written[0].page))
        }
        bucketName = nil
        written = []
    }

    /// Writes the root bucket, the freelist and both meta pages; returns the
    /// file's size.
    @discardableResult
    public func finish() throws(StorageError) -> Int {
        precondition(bucketName == nil, "finish with a bucket open")
        let sorted = buckets.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        var elements: [(key: [UInt8], value: [UInt8], flags: UInt32)] = []
        for bucket in sorted {
            var header: [UInt8] = []
            Self.append(bucket.root, to: &header)
            Self.append(UInt64(0), to: &header)  // sequence
            if bucket.root == 0 {
                // An inline page with no elements follows the header.
                Self.appendPageHeader(id: 0, flags: Self.leafPageFlag, count: 0, overflow: 0, to: &header)
            }
            elements.append((bucket.name, header, Self.bucketLeafFlag))
        }
        let root = try writeLeaf(elements)
        var freelist: [UInt8] = []
        Self.appendPageHeader(id: Self.freelistPage, flags: Self.freelistPageFlag, count: 0, overflow: 0, to: &freelist)
        try writePage(freelist, at: Self.freelistPage)
        for id: UInt64 in [0, 1] {
            try writePage(Self.metaPage(id: id, root: root, pages: nextPage), at: id)
        }
        bytesWritten = Int(nextPage) * Self.pageSize
        // A file a reader maps whole: its length is every page.
        if ftruncate(fd, off_t(bytesWritten)) != 0 { throw .io(errno: errno, operation: "ftruncate", path: path) }
        return bytesWritten
    }

    private func flushLeaf() throws(StorageError) {
        let first = leaf[0].key
        let page = try writeLeaf(leaf.map { ($0.key, $0.value, 0) })
        written.append((first, page))
        leaf = []
        leafBytes = Self.pageHeaderBytes
    }

    /// A leaf page (with overflow pages when one element outgrows a page); returns its ID.
    private func writeLeaf(_ elements: [(key: [UInt8], value: [UInt8], flags: UInt32)]) throws(StorageError) -> UInt64 {
        try writeNode(flags: Self.leafPageFlag, elements.map { element in
            (element.key + element.value, { pos in
                var header: [UInt8] = []
                Self.append(element.flags, to: &header)
                Self.append(pos, to: &header)
                Self.append(UInt32(element.key.count), to: &header)
                Self.append(UInt32(element.value.count), to: &header)
                return header
            })
        })
    }

    private func writeBranch(_ entries: [(key: [UInt8], child: UInt64)]) throws(StorageError) {
        let id = try writeNode(flags: Self.branchPageFlag, entries.map { entry in
            (entry.key, { pos in
                var header: [UInt8] = []
                Self.append(pos, to: &header)
                Self.append(UInt32(entry.key.count), to: &header)
                Self.append(entry.child, to: &header)
                return header
            })
        })
        written.append((entries[0].key, id))
    }

    /// A page of elements: their fixed-size headers, then their data; each
    /// header gets its `pos`, the distance from the header to its data.
    private func writeNode(flags: UInt16, _ elements: [(data: [UInt8], header: (_ pos: UInt32) -> [UInt8])]) throws(StorageError) -> UInt64 {
        precondition(elements.count <= Int(UInt16.max), "a page holds at most 65535 elements")
        let id = nextPage
        let dataStart = Self.pageHeaderBytes + Self.elementBytes * elements.count
        var headers: [UInt8] = []
        var data: [UInt8] = []
        for (i, element) in elements.enumerated() {
            let header = element.header(UInt32(dataStart + data.count - Self.pageHeaderBytes - Self.elementBytes * i))
            assert(header.count == Self.elementBytes, "bbolt's element headers are 16 bytes")
            headers += header
            data += element.data
        }
        let body = headers + data
        let pages = (Self.pageHeaderBytes + body.count + Self.pageSize - 1) / Self.pageSize
        var page: [UInt8] = []
        page.reserveCapacity(pages * Self.pageSize)
        Self.appendPageHeader(id: id, flags: flags, count: UInt16(elements.count), overflow: UInt32(pages - 1), to: &page)
        page += body
        try writePage(page, at: id)
        nextPage += UInt64(pages)
        return id
    }

    private func writePage(_ bytes: [UInt8], at id: UInt64) throws(StorageError) {
        let pages = max(1, (bytes.count + Self.pageSize - 1) / Self.pageSize)
        let padded = bytes + [UInt8](repeating: 0, count: pages * Self.pageSize - bytes.count)
        try WriteAheadLog.write(padded, at: Int(id) * Self.pageSize, fd: fd, path: path)
    }

    /// A meta page: which page is the root bucket, where the freelist is,
    /// how many pages there are, and its FNV-1a checksum.
    static func metaPage(id: UInt64, root: UInt64, pages: UInt64) -> [UInt8] {
        var meta: [UInt8] = []
        append(magic, to: &meta)
        append(version, to: &meta)
        append(UInt32(pageSize), to: &meta)
        append(UInt32(0), to: &meta)  // flags
        append(root, to: &meta)
        append(UInt64(0), to: &meta)  // root bucket's sequence
        append(freelistPage, to: &meta)
        append(pages, to: &meta)  // the high-water mark
        append(UInt64(1), to: &meta)  // txid
        append(fnv1a64(meta), to: &meta)
        var page: [UInt8] = []
        appendPageHeader(id: id, flags: metaPageFlag, count: 0, overflow: 0, to: &page)
        return page + meta
    }

    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    static func appendPageHeader(id: UInt64, flags: UInt16, count: UInt16, overflow: UInt32, to bytes: inout [UInt8]) {
        append(id, to: &bytes)
        append(flags, to: &bytes)
        append(count, to: &bytes)
        append(overflow, to: &bytes)
    }

    /// bbolt writes its integers in the machine's order: little-endian on
    /// every platform etcd and Ballot run on.
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
