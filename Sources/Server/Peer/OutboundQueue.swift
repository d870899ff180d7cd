import Foundation

/// Encoded messages waiting for one peer's stream: bounded, dropping the
/// oldest when full (Raft tolerates loss and resends), and drained whole
/// so one frame carries everything queued.
final class OutboundQueue: @unchecked Sendable {
    static let capacityDefault = 4_096

    private let lock = NSLock()
    private var items: [[UInt8]] = []
    private var waiter: CheckedContinuation<[[UInt8]], Never>?
    private let capacity: Int

    init(capacity: Int = capacityDefault) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func push(_ item: [UInt8]) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: [item])
            return
        }
        if items.count >= capacity { items.removeFirst() }
        items.append(item)
        lock.unlock()
    }

    /// Everything queued, waiting for at least one item. One consumer at a time.
    func drain() async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            lock.lock()
            if items.isEmpty {
                precondition(waiter == nil, "one consumer at a time")
                waiter = continuation
                lock.unlock()
            } else {
                let taken = items
                items = []
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
