import DequeModule

/// How many gateway calls one client URL runs at once: etcd's
/// `--max-concurrent-streams`. etcd's gateway reaches its gRPC server
/// through one HTTP/2 connection per URL, whose stream limit is that flag,
/// so a call beyond it waits until another ends (etcd's e2e suite checks
/// that a range waits while that many watches are open). It also bounds
/// what HTTP clients can make a member hold.
actor GatewayStreamLimit {
    let limit: Int
    private var inUse = 0
    private var waiting: Deque<(id: UInt64, resume: CheckedContinuation<Bool, Never>)> = []
    private var nextID: UInt64 = 0

    init(limit: Int) {
        precondition(limit > 0, "a stream limit admits at least one call")
        self.limit = limit
    }

    /// Wait for a place; false when the caller was cancelled first.
    func acquire() async -> Bool {
        if inUse < limit, waiting.isEmpty {
            inUse += 1
            return true
        }
        let id = nextID
        nextID += 1
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: false)
                } else {
                    waiting.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.withdraw(id) }
        }
    }

    /// Give a place back; the longest waiter gets it.
    func release() {
        precondition(inUse > 0, "released a place that was not taken")
        if let next = waiting.popFirst() {
            next.resume.resume(returning: true)
        } else {
            inUse -= 1
        }
    }

    private func withdraw(_ id: UInt64) {
        guard let at = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: at).resume.resume(returning: false)
    }
}
