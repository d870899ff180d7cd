import Consensus
import EtcdAPI
import Foundation
import NIOCore
import StateMachine
import Storage

/// Log compaction and snapshots. The MVCC store is durable and records the
/// consensus state it applied through (`MVCCStore.recordApplied`), so the
/// store itself is the snapshot: compacting the log needs no copy, and a
/// copy of the store's file, taken while applies go on, is a complete
/// snapshot to send a member that lags behind the compacted log.
extension Node {
    /// Loop thread: forget log entries once `snapshotCount` more are applied
    /// (etcd's --snapshot-count), keeping `catchUpEntries` for followers
    /// that lag a little. Only what the store holds durably is compacted:
    /// its commits flush nothing until a checkpoint
    /// (`CommitDurability.checkpointed`), so the store takes one first.
    func compactLogIfDue() {
        let applied = committedToStore
        let compacted = core.snapshotMetadata.index
        guard applied.rawValue > compacted.rawValue + snapshotCount else { return }
        let through = LogIndex(applied.rawValue - catchUpEntries)
        guard through > compacted, through <= core.appliedIndex else { return }
        // A defragmentation swapping the file holds this lock for long; the
        // loop must not wait on it, and compaction can wait a turn.
        guard environmentLock.try() else { return }
        do {
            defer { environmentLock.unlock() }
            // The checkpoint waits for the apply thread's open batch (LMDB's writer lock).
            applyQueue.requestCommit()
            if injectedBug != .compactsLogBeforeStoreSync { try store.sync() }
        } catch {
            IOFailure.stop(logger, "syncing the store before compacting the log", error)
        }
        do {
            try core.compact(through: through)
        } catch .configurationPending(let slot, let from) {
            // A Multi-Paxos membership change governs only from `from`: compact on a later turn.
            logger.debug("compaction waits for a membership change", metadata: ["slot": "\(slot)", "governs from": "\(from)"])
            return
        } catch {
            IOFailure.stop(logger, "compacting the log", error)
        }
        do {
            let state = core.snapshotMetadata
            try wal.append(snapshot: SnapshotMarker(index: state.index, term: state.term, replacesLog: false, membership: state.membership))
            try wal.sync()
            try wal.releaseSegments(coveredThrough: state.index)
            logger.info("compacted the log", metadata: ["through": "\(state.index)", "applied": "\(applied)", "segments": "\(wal.segmentCount)"])
        } catch {
            IOFailure.stop(logger, "compacting the write-ahead log", error)
        }
    }

    /// Loop thread: hand consensus messages to the transport, except
    /// snapshot announcements, which go with the snapshot's bytes, and
    /// commit notices, which wait a moment for a later append to carry
    /// their news (`CommitNotices`).
    func send(_ messages: [Consensus.Message]) {
        let (messages, holding) = commitNotices.filter(messages)
        if holding && !commitNoticesDue {
            commitNoticesDue = true
            loop.scheduleTask(in: TimeAmount(commitNotices.delay)) { [self] in
                commitNoticesDue = false
                transport.send(commitNotices.release())
            }
        }
        var plain: [Consensus.Message] = []
        plain.reserveCapacity(messages.count)
        for message in messages {
            if case .snapshot(let wanted) = message.kind {
                ship(message, wanted: wanted)
            } else {
                plain.append(message)
            }
        }
        transport.send(plain)
    }

    /// Send a snapshot at least as new as `wanted` to `message.to`, in the
    /// background: capturing and streaming may take long, and the loop must
    /// go on. One transfer per member at a time; the core asks again if
    /// this one fails.
    private func ship(_ message: Consensus.Message, wanted: SnapshotMetadata) {
        let first = condition.withLock { shipping.insert(message.to).inserted }
        guard first else { return }
        let peer = message.to
        Task.detached { [self] in
            defer { condition.withLock { _ = shipping.remove(peer) } }
            do {
                let info = try await Self.onThread("ballot-snapshot") { try self.snapshotToShip(atLeast: wanted.index) }
                if status.unsettledSnapshotIndexes.contains(where: { $0.contains(info.metadata.index) }) {
                    // Taken while a Multi-Paxos membership change did not govern yet:
                    // it would record the new membership for slots the old one decides.
                    throw SnapshotNotSettled(index: info.metadata.index)
                }
                var announce = message
                announce.kind = .snapshot(info.metadata)
                logger.info("sending a snapshot", metadata: [
                    "to": "\(peer)", "index": "\(info.metadata.index)", "bytes": "\(info.size)",
                ])
                let started = ContinuousClock.now
                try await transport.sendSnapshot(info, announcing: announce) { sent, total in
                    self.logger.info("snapshot transfer progress", metadata: [
                        "to": "\(peer)", "sent": "\(sent)", "total": "\(total)", "percent": "\(total == 0 ? 100 : sent * 100 / total)",
                    ])
                }
                logger.info("sent a snapshot", metadata: [
                    "to": "\(peer)", "index": "\(info.metadata.index)", "bytes": "\(info.size)", "took": "\(ContinuousClock.now - started)",
                ])
            } catch {
                logger.warning("sending a snapshot failed; it is retried", metadata: ["to": "\(peer)", "error": "\(error)"])
            }
        }
    }

    /// A snapshot the core says must not be sent yet; the peer is sent a
    /// later one when the leader asks again.
    struct SnapshotNotSettled: Error, CustomStringConvertible {
        let index: LogIndex
        var description: String { "the snapshot at \(index) lies inside a membership change's window; a later one is sent" }
    }

    /// The newest snapshot file if it is new enough (the leader's log still
    /// holds every entry after it), else a fresh capture of the store.
    func snapshotToShip(atLeast index: LogIndex) throws -> SnapshotInfo {
        environmentLock.lock()
        defer { environmentLock.unlock() }
        let unsettled = status.unsettledSnapshotIndexes
        if let latest = try snapshots.latest(), latest.metadata.index >= index,
            !unsettled.contains(where: { $0.contains(latest.metadata.index) })
        {
            return latest
        }
        let info = try snapshots.capture(store) { done, total in
            self.logger.debug("checksumming a snapshot", metadata: ["done": "\(done)", "total": "\(total)"])
        }
        try snapshots.prune(below: info.metadata.index)
        logger.info("captured a snapshot", metadata: ["index": "\(info.metadata.index)", "bytes": "\(info.size)"])
        return info
    }

    /// A consistent copy of the store for a client (Maintenance.Snapshot)
    /// in etcd's bbolt format, taken beside applies, at `path`; returns its size.
    func writeEtcdSnapshot(to path: String) throws -> Int {
        environmentLock.lock()
        defer { environmentLock.unlock() }
        return try EtcdBackendSnapshot.write(store, to: path, alarmMember: id.rawValue)
    }

    /// Run `body` with the store to itself: no applies, no readers, no copy
    /// (defragmentation swaps the file).
    func withStoreExclusive<T>(_ body: (MVCCStore) throws -> T) throws -> T {
        environmentLock.lock()
        // The apply thread holds the store until its open batch commits.
        applyQueue.requestCommit()
        storeLock.lock()
        defer {
            recordUsage()
            storeLock.unlock()
            environmentLock.unlock()
        }
        return try body(store)
    }

    /// Loop thread, after the log recorded it: replace the store by the
    /// snapshot the leader sent (received in full before the core saw it),
    /// then reload what lives beside the store.
    func install(_ metadata: SnapshotMetadata) {
        do {
            guard let info = try snapshots.snapshot(at: metadata.index) else {
                fatalError("the snapshot at index \(metadata.index) was accepted but its file is missing from \(snapshots.directory)")
            }
            logger.info("installing a snapshot", metadata: ["index": "\(metadata.index)", "bytes": "\(info.size)"])
            // Entries handed over before the snapshot are older than it; let
            // them land before the store is swapped.
            applyQueue.waitIdle()
            environmentLock.lock()
            storeLock.lock()
            defer {
                storeLock.unlock()
                environmentLock.unlock()
            }
            try store.replace(with: info, from: snapshots) { done, total in
                self.logger.info("snapshot install progress", metadata: ["written": "\(done)", "total": "\(total)"])
            }
            precondition(store.appliedIndex == metadata.index, "snapshot \(metadata.index) holds applied index \(store.appliedIndex)")
            recordUsage()
            lessor.reset(records: try store.leases())
            try auth.load(from: store)
            tokens.apply([.forgetAll])
            metrics.mvcc.setKeys(try store.liveKeyCount())
            for (_, attributes) in try store.members() {
                guard let member = try? Etcdserverpb_Member(serializedBytes: attributes) else { continue }
                applyEffects.memberLearned(member)
            }
            try snapshots.prune(below: metadata.index)
            logger.info("installed a snapshot", metadata: ["index": "\(metadata.index)", "revision": "\(store.currentRevision)"])
        } catch {
            IOFailure.stop(logger, "installing the snapshot at index \(metadata.index)", error)
        }
        noteApplied(metadata.index)
        watchHub.notify()
    }

    /// Run blocking work (file copies, checksums) on its own thread, off
    /// the cooperative pool that serves gRPC.
    static func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    }
}
