#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an etcd member's write-ahead log (`member/wal/*.wal`, etcd 3.4's
/// format) says about taking its data over: whose it is (member and
/// cluster ID) and what its entries asked of the store.
///
/// etcd 3.4 records in its backend (`consistent_index`) only the last entry
/// that changed a key; an entry after it that changes keys was not applied
/// (a crash), while lease grants and compactions after it may well have
/// been, since they write the backend without moving that index. The
/// import redoes the latter (both are idempotent) and refuses the former.
///
/// etcd's segments are one stream of frames: a little-endian 8-byte length
/// (its top byte marking padding), then a `walpb.Record` (type, CRC, data).
/// The CRC is CRC-32C chained over every record's data, across segments.
/// A frame that does not decode or check at the end of the last segment is
/// a torn write (never acknowledged) and ends the log, as etcd reads it.
public struct EtcdWALSummary: Sendable, Equatable {
    public var memberID: UInt64
    public var clusterID: UInt64
    /// The last hard state's commit index.
    public var commit: UInt64
    /// The index of each entry the log holds (a later leader's rewrite of
    /// an index replaces the earlier entry), and what it asked.
    public var entries: [(index: UInt64, request: Request)]

    /// What an entry asks of the store (etcd's `InternalRaftRequest`).
    public enum Request: Sendable, Equatable {
        /// No client request: a conf change, a new leader's empty entry, a
        /// member's attributes, the cluster version.
        case none
        /// Changes keys: a put, a delete, a txn, a lease revocation.
        case write
        case leaseGrant(id: Int64, ttl: Int64)
        case compaction(revision: Int64)
        /// Anything else a client asked (alarms, auth).
        case other
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.memberID == b.memberID && a.clusterID == b.clusterID && a.commit == b.commit
            && a.entries.elementsEqual(b.entries) { $0.index == $1.index && $0.request == $1.request }
    }

    /// Entries after `index` that change keys: writes a backend applied
    /// through `index` has not got.
    public func writes(after index: UInt64) -> Int {
        entries.count { $0.index > index && $0.request == .write }
    }

    /// Whether any entry carries a client request at all.
    public var servedClients: Bool { entries.contains { $0.request != .none } }

    /// Lease grants and compactions after `index`, in log order.
    public func grantsAndCompactions(after index: UInt64) -> [Request] {
        entries.filter { entry in
            guard entry.index > index else { return false }
            switch entry.request {
            case .leaseGrant, .compaction: return true
            default: return false
            }
        }.map(\.request)
    }

    /// An entry's request, from `raftpb.Entry` (type 0 is a normal entry)
    /// and its data, an `InternalRaftRequest` (v2 requests, field 2, are
    /// etcd's own bookkeeping).
    static func request(_ entry: ProtoWire) -> Request {
        guard entry.uint64(1) == 0, let data = entry.bytes[4], !data.isEmpty, let request = ProtoWire(data) else { return .none }
        if [4, 5, 6, 9].contains(where: { request.bytes[$0] != nil }) { return .write }
        if let grant = request.bytes[8].flatMap({ ProtoWire($0) }) { return .leaseGrant(id: grant.int64(2), ttl: grant.int64(1)) }
        if let compaction = request.bytes[7].flatMap({ ProtoWire($0) }) { return .compaction(revision: compaction.int64(1)) }
        if request.bytes[2] != nil { return .none }
        return .other
    }

    static let metadataType: UInt64 = 1, entryType: UInt64 = 2, stateType: UInt64 = 3, crcType: UInt64 = 4, snapshotType: UInt64 = 5
    /// etcd's bound on one record (wal.maxWALEntrySizeLimit).
    static let recordBytesMax = 10 * 1024 * 1024

    /// Reads every segment in `directory` (nil when it holds none).
    public static func read(directory: String) throws(StorageError) -> EtcdWALSummary? {
        guard let dir = opendir(directory) else {
            if errno == ENOENT { return nil }
            throw .io(errno: errno, operation: "opendir", path: directory)
        }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".wal") { names.append(name) }
        }
        closedir(dir)
        guard !names.isEmpty else { return nil }
        names.sort()  // %016x-%016x.wal: sequence order

        var summary = EtcdWALSummary(memberID: 0, clusterID: 0, commit: 0, entries: [])
        var sawMetadata = false
        var crc: UInt32 = 0
        for (n, name) in names.enumerated() {
            let path = directory + "/" + name
            let bytes = try FileIO.read(path)
            let last = n == names.count - 1
            var at = 0
            frames: while at + 8 <= bytes.count {
                let length = bytes[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                if length == 0 { break }  // preallocated space
                let recordBytes = Int(length & 0x00ff_ffff_ffff_ffff)
                let padBytes = length >> 63 == 1 ? Int((length >> 56) & 0x7) : 0
                func torn(_ detail: String) throws(StorageError) {
                    if !last { throw .corrupt(path: path, detail: "\(detail) at byte \(at)") }
                }
                guard recordBytes < recordBytesMax, at + 8 + recordBytes + padBytes <= bytes.count,
                      let record = ProtoWire(bytes[(at + 8)..<(at + 8 + recordBytes)]) else {
                    try torn("a frame that does not decode")
                    break frames
                }
                let type = record.uint64(1)
                let data = record.data(3)
                if type != crcType {
                    crc = CRC32C.checksum(data, seed: crc)
                    guard UInt32(truncatingIfNeeded: record.uint64(2)) == crc else {
                        try torn("a record whose CRC does not match")
                        break frames
                    }
                }
                switch type {
                case metadataType:
                    guard let metadata = ProtoWire(data[...]) else { throw .corrupt(path: path, detail: "undecodable metadata") }
                    (summary.memberID, summary.clusterID) = (metadata.uint64(1), metadata.uint64(2))
                    sawMetadata = true
                case entryType:
                    guard let entry = ProtoWire(data[...]) else { throw .corrupt(path: path, detail: "undecodable entry") }
                    let index = entry.uint64(3)
                    if let cut = summary.entries.lastIndex(where: { $0.index < index }) {
                        summary.entries.removeSubrange((cut + 1)...)
                    } else {
                        summary.entries.removeAll()
                    }
                    summary.entries.append((index, request(entry)))
                case stateType:
                    guard let state = ProtoWire(data[...]) else { throw .corrupt(path: path, detail: "undecodable hard state") }
                    if state.uint64(1) != 0 || state.uint64(3) != 0 { summary.commit = state.uint64(3) }
                case crcType:
                    crc = UInt32(truncatingIfNeeded: record.uint64(2))
                default:
                    break  // snapshot markers: the entries after them are what matters
                }
                at += 8 + recordBytes + padBytes
            }
        }
        guard sawMetadata else { throw .corrupt(path: directory, detail: "an etcd write-ahead log without its metadata record") }
        return summary
    }
}
