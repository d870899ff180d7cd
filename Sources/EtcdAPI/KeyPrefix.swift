import Foundation

/// etcd's key ranges by prefix, shared by the members' own concurrency
/// recipes and the Swift client.
public enum KeyPrefix {
    /// The end of the range of keys under `prefix` (clientv3's
    /// `GetPrefixRangeEnd`): the prefix with its last byte below 0xff
    /// raised by one; every key after it if all its bytes are 0xff.
    public static func rangeEnd(_ prefix: Data) -> Data {
        var end = [UInt8](prefix)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return Data(end)
            }
            end.removeLast()
        }
        return Data([0])
    }
}
