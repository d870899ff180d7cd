#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WriteAheadLog {
    /// One `sync()` taken apart, so that its `pwrite` and `fdatasync` run
    /// on a thread other than the log's owner: the owner takes the job
    /// (`takeSyncJob()`, which reserves the bytes' place in the file), some
    /// thread performs it, and the owner marks it finished
    /// (`syncJobFinished()`) before it syncs, rotates or takes the next.
    /// Meanwhile the owner's thread is free: a member's event loop goes on
    /// reading its peers' acknowledgements while its own log flushes.
    ///
    /// `@unchecked Sendable`: the bytes are the job's alone, and the file
    /// descriptor stays open while the job is in flight (no rotation, and
    /// the log outlives it: its owner waits for the job before closing).
    public struct SyncJob: @unchecked Sendable {
        let bytes: [UInt8]
        let offset: Int
        let fd: Int32
        let path: String
        /// Test-only faults, decided when the job was taken.
        let fails: Bool
        let tearAfterBytes: Int?

        /// The bytes this job makes durable.
        public var byteCount: Int { bytes.count }

        /// Write the bytes and `fdatasync` them. Any thread.
        public func perform() throws(StorageError) {
            if let tearAfterBytes {
                // Test-only: a crash in the middle of the write.
                try WriteAheadLog.write(Array(bytes.prefix(tearAfterBytes)), at: offset, fd: fd, path: path)
                _exit(86)
            }
            if fails { throw .io(errno: EIO, operation: "fdatasync", path: path) }
            try WriteAheadLog.writeAndSync(bytes, at: offset, fd: fd, path: path)
        }
    }

    /// Take everything queued as a job to perform elsewhere; nil when
    /// nothing is queued. Until `syncJobFinished()`, the log refuses to
    /// sync or rotate.
    public func takeSyncJob() -> SyncJob? {
        precondition(!syncJobInFlight, "one sync job at a time")
        let taken = takePending()
        guard !taken.bytes.isEmpty else { return nil }
        var fails = false
        if let left = failSyncsAfter {
            // Test-only: the disk fails the flush and keeps none of it.
            if left <= 0 { fails = true } else { failSyncsAfter = left - 1 }
        }
        syncJobInFlight = true
        return SyncJob(bytes: taken.bytes, offset: taken.offset, fd: taken.fd, path: taken.path,
                       fails: fails, tearAfterBytes: tearNextSyncAfterBytes)
    }

    /// The job taken last has been performed (or has failed, and the
    /// owner stops): the file is the owner's again.
    public func syncJobFinished() {
        precondition(syncJobInFlight, "no sync job in flight")
        syncJobInFlight = false
    }
}
