import Foundation

/// Encoded messages waiting for one peer's connection: bounded in count and
/// bytes, dropping the oldest when full (Raft tolerates loss and resends),
/// and drained whole so one frame carries everything queued.
final class OutboundQueue: @unchecked Sendable {
    static let capacityDefault = 4_096
    static let bytesCapacityDefault = 256 << 20

    private let lock = NSLock()
    private var items: [[UInt8]] = []
    private var bytes = 0
    private var waiter: CheckedContinuation<[[UInt8]], Never>?
    private let capacity: Int
    private let bytesCapacity: Int

    init(capacity: Int = capacityDefault, bytesCapacity: Int = bytesCapacityDefault) {
        precondition(capacity > 0 && bytesCapacity > 0)
        self.capacity = capacity
        self.bytesCapacity = bytesCapacity
    }

    func push(_ item: [UInt8]) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: [item])
            return
        }
        items.append(item)
        bytes += item.count
        // The newest message always stays, however large.
        var dropped = 0
        while items.count - dropped > 1 && (items.count - dropped > capacity || bytes > bytesCapacity) {
            bytes -= items[dropped].count
            dropped += 1
        }
        if dropped > 0 { items.removeFirst(dropped) }
        lock.unlock()
    }

    /// Everything queued, waiting for at least one item; nothing at once if
    /// the calling task is cancelled (checked under the lock, so a `wake()`
    /// from a cancellation handler that ran before the wait is not lost).
    /// One consumer at a time.
    func drain() async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            lock.lock()
            if Task.isCancelled {
                lock.unlock()
                continuation.resume(returning: [])
            } else if items.isEmpty {
                precondition(waiter == nil, "one consumer at a time")
                waiter = continuation
                lock.unlock()
            } else {
                let taken = items
                items = []
                bytes = 0
                lock.unlock()
                continuation.resume(returning: taken)
            }
        }
    }

    /// Wake a waiting consumer with nothing, so it can notice shutdown.
    func wake() {
        lock.lock()
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume(returning: [])
    }
}
