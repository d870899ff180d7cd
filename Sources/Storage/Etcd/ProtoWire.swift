/// The few protobuf messages of etcd's files that Ballot reads
/// (`mvccpb.KeyValue`, `leasepb.Lease`, `walpb.Record`, `raftpb.Entry`,
/// `raftpb.HardState`, `etcdserverpb.Metadata`) are flat: varints and byte
/// strings. Decoding them here keeps Storage free of generated code; a
/// malformed message is `nil`, never a crash.
struct ProtoWire {
    /// Each field number's last varint and last byte string, as protobuf
    /// reads a message (a repeated scalar field's last value wins).
    private(set) var varints: [Int: UInt64] = [:]
    private(set) var bytes: [Int: ArraySlice<UInt8>] = [:]

    init?(_ message: ArraySlice<UInt8>) {
        var i = message.startIndex
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while i < message.endIndex, shift < 64 {
                let byte = message[i]
                i += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
        while i < message.endIndex {
            guard let tag = varint(), tag >> 3 > 0, tag >> 3 <= UInt64(Int32.max) else { return nil }
            let field = Int(tag >> 3)
            switch tag & 7 {
            case 0:
                guard let value = varint() else { return nil }
                varints[field] = value
            case 1, 5:
                let width = tag & 7 == 1 ? 8 : 4
                guard message.endIndex - i >= width else { return nil }
                var value: UInt64 = 0
                for k in 0..<width { value |= UInt64(message[i + k]) << (8 * UInt64(k)) }
                varints[field] = value
                i += width
            case 2:
                guard let length = varint(), length <= UInt64(message.endIndex - i) else { return nil }
                bytes[field] = message[i..<(i + Int(length))]
                i += Int(length)
            default:
                return nil  // groups: in none of etcd's files
            }
        }
    }

    func uint64(_ field: Int) -> UInt64 { varints[field] ?? 0 }
    func int64(_ field: Int) -> Int64 { Int64(bitPattern: varints[field] ?? 0) }
    func data(_ field: Int) -> [UInt8] { bytes[field].map(Array.init) ?? [] }
}
