import NIOCore
import NIOPosix
import Storage

/// Where a member's write-ahead log is flushed: one thread of its own (a
/// one-thread `NIOThreadPool`, swift-nio's place for blocking file I/O),
/// so that the node's event loop, which owns the log, goes on reading and
/// stepping its peers' frames during the `fdatasync` rather than finding
/// them queued after it. The Ready contract allows it: between a Ready's
/// write and its `finish()` the core may step, tick and propose, only no
/// other Ready is taken (`ReplicaDriver`).
///
/// One job at a time (the log refuses a second while one is in flight); its
/// outcome comes back on the node's event loop. Each flush is timed for
/// etcd's `etcd_disk_wal_fsync_duration_seconds`.
final class WALSyncer: Sendable {
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let loop: any EventLoop
    private let metrics: ServerMetrics

    init(loop: any EventLoop, metrics: ServerMetrics) {
        self.loop = loop
        self.metrics = metrics
        pool.start()
    }

    /// Perform `job` on the sync thread; `done` runs on the event loop with
    /// its outcome (a failure too when the syncer was stopped first).
    func sync(_ job: WriteAheadLog.SyncJob, then done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let metrics = self.metrics
        pool.runIfActive(eventLoop: loop) {
            let started = ContinuousClock.now
            try job.perform()
            metrics.walFsync.record(ContinuousClock.now - started)
        }.whenComplete(done)
    }

    /// Wait for the job being performed, then end the thread: before the
    /// log's file is closed. Not from the event loop.
    func stop() {
        precondition(!loop.inEventLoop, "the syncer is stopped from outside the event loop it answers on")
        try? pool.syncShutdownGracefully()
    }
}
