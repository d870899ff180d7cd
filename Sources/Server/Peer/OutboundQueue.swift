import Foundation

/// Encoded messages waiting for one peer's connection: bounded in count and
/// bytes, dropping the oldest when full (Raft tolerates loss and resends),
/// and taken whole so one frame carries everything queued.
final class OutboundQueue: @unchecked Sendable {
    static let capacityDefault = 4_096
    static let bytesCapacityDefault = 256 << 20

    private let lock = NSLock()
    private var items: [[UInt8]] = []
    private var bytes = 0
    private let capacity: Int
    private let bytesCapacity: Int

    init(capacity: Int = capacityDefault, bytesCapacity: Int = bytesCapacityDefault) {
        precondition(capacity > 0 && bytesCapacity > 0)
        self.capacity = capacity
        self.bytesCapacity = bytesCapacity
    }

    /// Queue `item`; true if the queue was empty (the caller schedules the
    /// one flush that takes it and whatever follows before that flush runs).
    @discardableResult
    func push(_ item: [UInt8]) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let wasEmpty = items.isEmpty
        items.append(item)
        bytes += item.count
        // The newest message always stays, however large.
        var dropped = 0
        while items.count - dropped > 1 && (items.count - dropped > capacity || bytes > bytesCapacity) {
            bytes -= items[dropped].count
            dropped += 1
        }
        if dropped > 0 { items.removeFirst(dropped) }
        return wasEmpty
    }

    /// Everything queued, oldest first; the queue is left empty.
    func takeAll() -> [[UInt8]] {
        lock.lock()
        defer { lock.unlock() }
        let taken = items
        items = []
        bytes = 0
        return taken
    }
}
