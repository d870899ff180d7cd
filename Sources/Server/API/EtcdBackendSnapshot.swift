import EtcdAPI
import Foundation
import Storage

/// The store as etcd 3.4's backend holds it, written as a bbolt file
/// (`BoltFileWriter`), so that what `Maintenance.Snapshot` streams is a
/// file etcd's tools take: `etcdctl snapshot status` counts and hashes it,
/// `etcdctl snapshot restore` turns it into an etcd data directory.
///
/// etcd's buckets and encodings (mvcc/kvstore.go, lease/lessor.go,
/// etcdserver/api/membership/store.go):
/// - `key`: each version under its revision, 8 bytes of main revision
///   (big-endian), `_`, 8 bytes of sub revision, and a `t` after a
///   deletion; the value an `mvccpb.KeyValue` (only the key for a deletion);
/// - `meta`: `consistent_index` (8 bytes, big-endian) and, once compacted,
///   `finishedCompactRev` and `scheduledCompactRev` (a revision as above);
/// - `lease`: each lease under its ID (8 bytes, big-endian), the value a `leasepb.Lease`;
/// - `members`: each member under its ID in hex, the value etcd's JSON for it;
/// - `alarm`: each raised alarm as an `AlarmMember`, with no value;
/// - `cluster`: `clusterVersion`;
/// - `auth`, `authUsers`, `authRoles`, `members_removed`: empty.
enum EtcdBackendSnapshot {
    static let clusterVersion = "3.4.0"

    /// Writes the file; returns its size. `alarmMember` names the member
    /// a raised NOSPACE alarm is recorded for.
    static func write(_ store: MVCCStore, to path: String, alarmMember: UInt64) throws -> Int {
        let writer = try BoltFileWriter(path: path)
        writer.beginBucket(Array("key".utf8))
        let rest = try store.export { version throws(StorageError) in
            var kv = Mvccpb_KeyValue()
            kv.key = Data(version.kv.key)
            if !version.tombstone {
                kv.createRevision = version.kv.createRevision
                kv.modRevision = version.kv.modRevision
                kv.version = version.kv.version
                kv.value = Data(version.kv.value)
                kv.lease = version.kv.lease
            }
            guard let bytes: [UInt8] = try? kv.serializedBytes() else {
                throw .corrupt(path: path, detail: "cannot encode the version at revision \(version.main)")
            }
            try writer.put(revisionKey(main: version.main, sub: version.sub, tombstone: version.tombstone), bytes)
        }
        try writer.endBucket()

        writer.beginBucket(Array("meta".utf8))
        try writer.put(Array("consistent_index".utf8), bigEndian(rest.appliedIndex))
        if rest.compactedRevision > 0 {
            let revision = revisionKey(main: rest.compactedRevision, sub: 0, tombstone: false)
            try writer.put(Array("finishedCompactRev".utf8), revision)
            try writer.put(Array("scheduledCompactRev".utf8), revision)
        }
        try writer.endBucket()

        writer.beginBucket(Array("lease".utf8))
        for lease in rest.leases.sorted(by: { UInt64(bitPattern: $0.id) < UInt64(bitPattern: $1.id) }) {
            try writer.put(bigEndian(UInt64(bitPattern: lease.id)), leaseBytes(id: lease.id, ttl: lease.ttl))
        }
        try writer.endBucket()

        writer.beginBucket(Array("members".utf8))
        let members = try rest.members.compactMap { record -> (key: [UInt8], json: [UInt8])? in
            guard !record.attributes.isEmpty else { return nil }
            let member = try Etcdserverpb_Member(serializedBytes: record.attributes)
            return (Array(String(record.id, radix: 16).utf8), memberJSON(id: record.id, member))
        }
        for member in members.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            try writer.put(member.key, member.json)
        }
        try writer.endBucket()

        writer.beginBucket(Array("alarm".utf8))
        if rest.noSpaceAlarm {
            var alarm = Etcdserverpb_AlarmMember()
            alarm.memberID = alarmMember
            alarm.alarm = .nospace
            try writer.put(try alarm.serializedBytes(), [])
        }
        try writer.endBucket()

        writer.beginBucket(Array("cluster".utf8))
        try writer.put(Array("clusterVersion".utf8), Array(clusterVersion.utf8))
        try writer.endBucket()

        for empty in ["auth", "authRoles", "authUsers", "members_removed"] {
            writer.beginBucket(Array(empty.utf8))
            try writer.endBucket()
        }
        return try writer.finish()
    }

    /// etcd's revision key (mvcc/revision.go) and its tombstone mark.
    static func revisionKey(main: Int64, sub: Int64, tombstone: Bool) -> [UInt8] {
        var key = bigEndian(UInt64(bitPattern: main))
        key.append(UInt8(ascii: "_"))
        key += bigEndian(UInt64(bitPattern: sub))
        if tombstone { key.append(UInt8(ascii: "t")) }
        return key
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// A `leasepb.Lease` (fields 1 ID and 2 TTL, both int64): two varints,
    /// written here since etcd's lease.proto is not among the generated files.
    static func leaseBytes(id: Int64, ttl: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        for (tag, value) in [(UInt8(0x08), id), (UInt8(0x10), ttl)] where value != 0 {
            bytes.append(tag)
            var rest = UInt64(bitPattern: value)
            while rest >= 0x80 {
                bytes.append(UInt8(rest & 0x7f) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(rest))
        }
        return bytes
    }

    /// etcd's JSON for a member, fields in its order (membership.Member).
    static func memberJSON(id: UInt64, _ member: Etcdserverpb_Member) -> [UInt8] {
        func quoted(_ text: String) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes  // Go writes "http://", not "http:\/\/"
            let data = (try? encoder.encode(text)) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        }
        var fields = ["\"id\":\(id)", "\"peerURLs\":[\(member.peerUrls.map(quoted).joined(separator: ","))]"]
        if member.isLearner { fields.append("\"isLearner\":true") }
        if !member.name.isEmpty { fields.append("\"name\":\(quoted(member.name))") }
        if !member.clientUrls.isEmpty { fields.append("\"clientURLs\":[\(member.clientUrls.map(quoted).joined(separator: ","))]") }
        return Array("{\(fields.joined(separator: ","))}".utf8)
    }
}
